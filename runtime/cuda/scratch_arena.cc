#include "runtime/cuda/scratch_arena.h"

#include <algorithm>
#include <utility>

namespace pinfer::cuda::internal {

ScratchArena::ScratchArena(AllocateFn allocate, FreeFn free, size_t min_chunk_bytes)
    : allocate_(std::move(allocate)), free_(std::move(free)), min_chunk_bytes_(min_chunk_bytes) {}

ScratchArena::~ScratchArena() {
  for (const Chunk& chunk : chunks_) free_(chunk.data);
}

size_t ScratchArena::reserved_bytes() const {
  size_t total = 0;
  for (const Chunk& chunk : chunks_) total += chunk.size;
  return total;
}

size_t ScratchArena::used_bytes() const {
  size_t total = 0;
  for (const Chunk& chunk : chunks_) total += chunk.used;
  return total;
}

absl::StatusOr<void*> ScratchArena::Take(size_t bytes) {
  const size_t rounded = std::max(kAlignment, (bytes + kAlignment - 1) / kAlignment * kAlignment);
  while (top_ < chunks_.size()) {
    Chunk& chunk = chunks_[top_];
    if (chunk.size - chunk.used >= rounded) {
      void* data = chunk.data + chunk.used;
      chunk.used += rounded;
      return data;
    }
    if (top_ + 1 == chunks_.size()) break;
    ++top_;  // the next chunk is empty (LIFO scopes): try it
  }
  // Grow geometrically so that a model's working set settles in a few chunks.
  const size_t last = chunks_.empty() ? 0 : chunks_.back().size;
  const size_t size = std::max({rounded, min_chunk_bytes_, 2 * last});
  absl::StatusOr<void*> data = allocate_(size);
  if (!data.ok()) return data.status();
  chunks_.push_back({static_cast<uint8_t*>(*data), size, rounded});
  top_ = chunks_.size() - 1;
  return *data;
}

ScratchArena::Scope::Scope(ScratchArena& arena)
    : arena_(arena),
      saved_top_(arena.top_),
      saved_used_(arena.top_ < arena.chunks_.size() ? arena.chunks_[arena.top_].used : 0) {}

ScratchArena::Scope::~Scope() {
  std::vector<Chunk>& chunks = arena_.chunks_;
  for (size_t i = saved_top_ + 1; i < chunks.size(); ++i) chunks[i].used = 0;
  if (saved_top_ < chunks.size()) chunks[saved_top_].used = saved_used_;
  arena_.top_ = saved_top_;
}

absl::StatusOr<void*> ScratchArena::Scope::Allocate(size_t bytes) { return arena_.Take(bytes); }

}  // namespace pinfer::cuda::internal
