// Device scratch memory for the kernels of one stream, handed out in LIFO scopes.
//
// An operation opens a Scope, takes the temporary buffers it needs (partial sums, compacted index
// lists, f16 copies of activations...) and enqueues its kernels; when the Scope closes the memory
// goes back to the arena for the next operation. That is safe without any synchronisation because
// every user of the arena enqueues on the same stream, which runs kernels in order: the next
// operation's kernels start after the previous one's have finished with the memory.
//
// Memory comes in chunks that never move while handed out (growing appends a chunk), so an
// operation may call another one that opens its own nested Scope. Chunks are kept until the arena
// is destroyed: after the first tokens no allocation happens on the hot path.
//
// Not thread-safe: one arena per stream, used from the thread that enqueues on that stream. The
// allocator is injected so that this bookkeeping is tested without a GPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"

namespace pinfer::cuda::internal {

class ScratchArena {
 public:
  using AllocateFn = std::function<absl::StatusOr<void*>(size_t bytes)>;
  using FreeFn = std::function<void(void* data)>;
  // Every allocation is rounded up to this (cudaMalloc's own alignment), so buffers can be read
  // with vector loads.
  static constexpr size_t kAlignment = 256;

  ScratchArena(AllocateFn allocate, FreeFn free, size_t min_chunk_bytes);
  ~ScratchArena();
  ScratchArena(const ScratchArena&) = delete;
  ScratchArena& operator=(const ScratchArena&) = delete;

  // Scopes must close in the reverse order of opening (they are meant to live on the C++ stack).
  class Scope {
   public:
    explicit Scope(ScratchArena& arena);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

    // `bytes` of device memory, kAlignment-aligned, valid until this Scope closes.
    absl::StatusOr<void*> Allocate(size_t bytes);
    template <typename T>
    absl::StatusOr<T*> Allocate(size_t count) {
      absl::StatusOr<void*> data = Allocate(count * sizeof(T));
      if (!data.ok()) return data.status();
      return static_cast<T*>(*data);
    }

   private:
    ScratchArena& arena_;
    size_t saved_top_;
    size_t saved_used_;
  };

  size_t chunk_count() const { return chunks_.size(); }
  size_t reserved_bytes() const;
  size_t used_bytes() const;

 private:
  struct Chunk {
    uint8_t* data;
    size_t size;
    size_t used;
  };
  absl::StatusOr<void*> Take(size_t bytes);

  AllocateFn allocate_;
  FreeFn free_;
  size_t min_chunk_bytes_;
  std::vector<Chunk> chunks_;
  size_t top_ = 0;  // the chunk allocations come from; chunks after it are empty
};

}  // namespace pinfer::cuda::internal
