// Where the dense work of a forward pass runs: the memory and the operations the executor needs
// for a layer's attention (its norm and the norm activation, the q/k/v/output products over weights
// uploaded at load, RoPE, the KV write and attention against a sequence's KV cache), the FFN's
// norm, the residual adds, the classifier, and the copies between the host and the backend.
//
// Implementations (chosen once, at load, by placement_setup.h's --gpu-backend):
//   CpuBackend, host     the executor's own memory: weights are the mapped views, nothing is copied
//                        (cpu_backend.h); every layer the plan leaves on the CPU runs on it
//   CpuBackend, stand-in a "device" whose memory is host buffers of its own, distinct from the
//                        executor's: uploads copy, and a missing copy between the two gives wrong
//                        logits; how the plan's device parts are tested on any machine
//   the CUDA backend     runtime/cuda's kernels on one stream (cuda_backend.h)
// The executor's forward pass is written once against this interface; a layer's place only says
// which backend and which buffers it uses.
//
// Every operation is enqueued in order (the CPU runs it at once, CUDA on its stream); host memory
// is safe to read after Synchronize(). Pointers are the backend's memory unless a name says host.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "format/dtype.h"
#include "runtime/cpu/kernels.h"
#include "runtime/model/model_config.h"
#include "runtime/model/placement_plan.h"

namespace pinfer {

// A weight matrix in a backend's memory, laid out as in the .pi file.
struct BackendMatrix {
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  size_t row_bytes = 0;
  const void* data = nullptr;

  uint64_t bytes() const { return static_cast<uint64_t>(rows) * row_bytes; }
  const float* floats() const { return static_cast<const float*>(data); }
  // For backends whose memory the CPU addresses (CpuBackend).
  cpu::MatrixView view() const {
    return {dtype, rows, cols, static_cast<const uint8_t*>(data), row_bytes};
  }
};

// What a backend's memory holds, by part of the plan (placement_plan.h's PlanBytes).
enum class MemoryPart { kWorkspace, kNorms, kAttention, kKv, kFfn, kPredictor, kOutput };

// Memory of a backend, freed (and taken off its accounting) on destruction. Move-only.
class BackendBuffer {
 public:
  BackendBuffer() = default;
  BackendBuffer(void* data, size_t bytes, std::function<void(void*, size_t)> release)
      : data_(data), bytes_(bytes), release_(std::move(release)) {}
  BackendBuffer(BackendBuffer&& other) noexcept { *this = std::move(other); }
  BackendBuffer& operator=(BackendBuffer&& other) noexcept;
  BackendBuffer(const BackendBuffer&) = delete;
  BackendBuffer& operator=(const BackendBuffer&) = delete;
  ~BackendBuffer() { Reset(); }

  void* data() const { return data_; }
  float* floats() const { return static_cast<float*>(data_); }
  template <typename T>
  T* As() const {
    return static_cast<T*>(data_);
  }
  size_t size() const { return bytes_; }
  void Reset();

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  std::function<void(void*, size_t)> release_;
};

// One sequence's keys and values of the layers a backend holds ("slots": a device's layers in
// order), in its memory. The host's is the sequence's KvCache (kv_cache.h).
class KvCache;
class KvStore {
 public:
  virtual ~KvStore() = default;
  virtual uint64_t Bytes() const = 0;
  virtual int64_t slots() const = 0;
  virtual int64_t context() const = 0;
  // The cache as the CPU addresses it (a KvCache), or null (a device's).
  virtual KvCache* host_cache() { return nullptr; }
};

class Backend {
 public:
  virtual ~Backend() = default;
  // "cpu", "cpu stand-in", "cuda".
  virtual std::string_view name() const = 0;
  // The executor's host memory itself: weights are used where they are mapped, and reaching this
  // backend's buffers from the host needs no copy.
  virtual bool host() const = 0;

  // Memory, accounted under `part` while the buffer lives.
  absl::StatusOr<BackendBuffer> Allocate(size_t bytes, MemoryPart part);
  // THE upload of a weight tensor (every one goes through here: attention, norms, the classifier,
  // a device FFN part's gathered rows, a device predictor): rows `rows` of `w` in that order
  // (empty: all of it), kept for the backend's lifetime and accounted under `part`. The host
  // backend returns the mapped tensor itself when it is asked for all of it. A layout that must be
  // converted before a device reads it would be converted here, once.
  absl::StatusOr<BackendMatrix> UploadWeight(const cpu::MatrixView& w,
                                             std::span<const int32_t> rows, MemoryPart part);
  // A 1-D f32 weight (a norm) through UploadWeight.
  absl::StatusOr<const float*> UploadVector(const float* host, int64_t count, MemoryPart part);

  // Bytes held now, per part.
  PlanBytes used() const { return used_; }
  // Free memory on the device before this process allocates more (nullopt: not a device).
  virtual std::optional<uint64_t> FreeMemoryBytes() const { return std::nullopt; }

  // Copies: host_src -> dst (this backend's memory), src -> host_dst.
  virtual absl::Status CopyIn(void* dst, const void* host_src, size_t bytes) = 0;
  virtual absl::Status CopyOut(void* host_dst, const void* src, size_t bytes) = 0;
  // Waits until everything enqueued has run; reports a device's execution errors.
  virtual absl::Status Synchronize() = 0;

  // For each of `rows` rows of `dim`: out = x / sqrt(mean(x²) + eps) · weight.
  virtual absl::Status RmsNorm(const float* x, const float* weight, int64_t rows, int64_t dim,
                               float eps, float* out) = 0;
  // For each of `rows` rows of `dim`: LayerNorm · weight + bias (cpu/layer_norm.h). Only backends
  // whose SupportsModel accepts a LayerNorm model are called with it.
  virtual absl::Status LayerNorm(const float* x, const float* weight, const float* bias,
                                 int64_t rows, int64_t dim, float eps, float* out);
  // y[r, c] += bias[c] for r < rows, c < cols: the biases of the projections (same proviso).
  virtual absl::Status AddBias(const float* bias, int64_t rows, int64_t cols, float* y);
  // Whether this backend computes every operation `config`'s architecture needs. The default:
  // the llama ones only (rmsnorm, RoPE, no biases); the message names the backend and the
  // architecture. The executor asks before placing anything on a device.
  virtual absl::Status SupportsModel(const ModelConfig& config) const;
  // x[i] = max(x[i] - shift, 0): the norm activation.
  virtual absl::Status ShiftedRelu(float* x, int64_t count, float shift) = 0;
  // Y[t,r] = W[r,:] · X[t,:] for t < n.
  virtual absl::Status MatMul(const BackendMatrix& w, const float* x, int64_t n, float* y) = 0;
  // Interleaved RoPE of n tokens ([n, n_heads, head_dim]) at positions [pos0, pos0 + n), at the
  // model's frequencies (rope_frequencies.h).
  virtual absl::Status Rope(float* v, int64_t n, int64_t n_heads, int64_t head_dim, int64_t pos0,
                            const RopeFrequencies& rope) = 0;
  // y[i] += x[i]
  virtual absl::Status Add(const float* x, int64_t count, float* y) = 0;

  // A sequence's KV cache of `slots` layers for `context` positions in this backend's memory
  // (`host_type`: the host's cache type; a device stores f16, as the plan accounts).
  virtual absl::StatusOr<std::unique_ptr<KvStore>> CreateKv(const ModelConfig& config,
                                                            int64_t slots, int64_t context,
                                                            DType host_type) = 0;
  // The keys ([n, kv_dim], rotated) and values of positions [pos0, pos0 + n) into slot `slot`.
  virtual absl::Status WriteKv(KvStore& kv, int64_t slot, int64_t pos0, int64_t n,
                               const float* keys, const float* values) = 0;
  // Causal attention of n queries at [pos0, pos0 + n) over the slot's rows [0, pos0 + n); adds the
  // KV bytes read to *kv_bytes.
  virtual absl::Status Attend(const KvStore& kv, int64_t slot, const float* q, int64_t pos0,
                              int64_t n, float* out, uint64_t* kv_bytes) = 0;
  // The context shift of every slot (KvCache::Shift's semantics).
  virtual absl::Status ShiftKv(KvStore& kv, int64_t n_past, int64_t keep, int64_t discard) = 0;

  // Accounting of memory that is not a BackendBuffer (a KV store's): +bytes when it is taken,
  // -bytes when it is given back.
  void Account(MemoryPart part, int64_t bytes);

 protected:
  // The raw memory behind Allocate.
  virtual absl::StatusOr<void*> AllocateRaw(size_t bytes) = 0;
  virtual void FreeRaw(void* data) = 0;
  // Frees the uploaded weights: every implementation's destructor calls it first, while FreeRaw
  // is still its own.
  void ReleaseWeights() { weights_.clear(); }

 private:
  PlanBytes used_;
  std::vector<BackendBuffer> weights_;  // UploadWeight's
};

// "attention 1.2 MiB, kv 4.0 MiB, ..." of the non-zero parts, and the total.
std::string DescribeMemory(const PlanBytes& bytes);

}  // namespace pinfer
