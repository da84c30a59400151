// The Llama-family forward pass, split into what is shared and what is per sequence.
//
//   Model     (runtime/model)  the mapped weights, read-only; one per process.
//   Executor  runs the forward pass: the model, the batch size for prompt processing and one
//             LayerFfn per layer (layer_ffn.h: dense by default; sparse and hybrid execution are
//             other parts and selections of the same mechanism). Shared by all sessions.
//   Session   (session.h) one sequence: its SequenceState (KV cache, scratch), the tokens
//             evaluated so far and the accounting. pi-server runs N sessions over one Executor.
//
// A layer, for a batch of n tokens at positions [pos0, pos0 + n) (Executor::Forward):
//   x += attention(norm(x))     norm: rmsnorm · attn_norm, then the norm activation (none, or a
//                               shifted ReLU); q, k, v, RoPE, the KV cache, causal grouped-query
//                               attention, the output projection
//   x += ffn[l](norm(x))        norm: rmsnorm · ffn_norm, then the norm activation
// then logits = output · rmsnorm(x) · output_norm (no norm activation on the final norm).
// Prompts are evaluated in batches of up to batch_size tokens (MatMul kernels), decode one token at
// a time (the same path with n = 1, where the kernels are matrix-vector products).
//
// Threads: the kernels parallelise inside each call (OpenMP, cpu::SetThreads), so forward passes
// run one at a time per process; sessions hold state, not threads.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/exec/ffn_rows.h"
#include "runtime/exec/forward_observer.h"
#include "runtime/exec/kv_cache.h"
#include "runtime/exec/layer_ffn.h"
#include "runtime/exec/memory_budget.h"
#include "runtime/model/model.h"

namespace pinfer {

struct ExecutorOptions {
  int64_t batch_size = 256;  // prompt tokens per forward pass
};

// Which logits a forward pass returns.
enum class Logits {
  kNone,  // none (profiling, filling the cache)
  kLast,  // the last token's: [vocab]
  kAll,   // every token's: [n, vocab]
};

// What forward passes read and how long they took, summed since the last ResetStats().
struct ForwardStats {
  int64_t tokens = 0;         // tokens evaluated
  int64_t passes = 0;         // forward passes (batches)
  uint64_t weight_bytes = 0;  // weight bytes read: each matrix once per pass, as the kernels do
  uint64_t kv_bytes = 0;      // KV cache bytes read by attention (in the cache's type)
  double seconds = 0.0;

  ForwardStats& operator+=(const ForwardStats& other);
  ForwardStats operator-(const ForwardStats& other) const;
  // (weight + KV bytes) per second, in GB/s (10^9).
  double EffectiveGBps() const;
};

// One sequence's memory for the forward pass: the KV cache and the scratch of a batch.
struct SequenceState {
  int64_t context = 0;           // positions the KV cache holds
  int64_t capacity = 0;          // tokens per pass
  KvCache kv;                    // every layer's keys and values, in the cache's type (kv_cache.h)
  std::vector<float> x;          // [capacity, dim]    the residual stream
  std::vector<float> normed;     // [capacity, dim]
  std::vector<float> q;          // [capacity, q_dim]
  std::vector<float> k;          // [capacity, kv_dim] this pass's keys, before the cache
  std::vector<float> v;          // [capacity, kv_dim] and values
  std::vector<float> attention;  // [capacity, q_dim]
  std::vector<float> projected;  // [capacity, dim]
  FfnWorkspace ffn;

  // Sized for `config`, the KV cache of `cache_type` (f32, f16 or q8_0); InvalidArgument for a
  // cache type the model cannot use, ResourceExhausted (naming the KV bytes) when memory runs out.
  static absl::StatusOr<SequenceState> Create(const ModelConfig& config, int64_t context,
                                              int64_t capacity,
                                              DType cache_type = kDefaultKvCacheType);
  // The bytes Create allocates (KV cache and scratch), once every position is used.
  static uint64_t Bytes(const ModelConfig& config, int64_t context, int64_t capacity,
                        DType cache_type = kDefaultKvCacheType);
};

class Executor {
 public:
  // Every layer dense: one CPU part computing all neurons.
  explicit Executor(const Model& model, const ExecutorOptions& options = {});

  const Model& model() const { return model_; }
  const ModelConfig& config() const { return model_.config(); }
  int64_t batch_size() const { return options_.batch_size; }

  // Installs one FFN per layer (BuildFfnLayers). The executor must not run while it changes.
  absl::Status SetFfnLayers(std::vector<std::unique_ptr<LayerFfn>> layers);
  LayerFfn& ffn(int64_t layer) const { return *ffn_[static_cast<size_t>(layer)]; }
  int64_t n_layers() const { return static_cast<int64_t>(ffn_.size()); }

  // One pass over `tokens` (at most the state's capacity) at positions [pos0, pos0 + n): writes
  // their KV rows, fills `logits_out` with [n, vocab] (kAll), [vocab] (kLast) or nothing, and adds
  // what it read to `stats`. `observer` (may be null) sees each layer's FFN.
  absl::Status Forward(SequenceState& state, int64_t pos0, std::span<const int32_t> tokens,
                       Logits logits, float* logits_out, ForwardObserver* observer,
                       ForwardStats& stats) const;

  // The context shift of a sequence holding positions [0, n_past): drops positions
  // [keep, keep + discard) from the KV cache of every layer, moves the later rows down by
  // `discard` and re-rotates their keys to their new positions (RoPE is a rotation: the stored key
  // rotated by -discard positions is the key its hidden state gives at the new position). The
  // moved entries keep what they saw of the dropped tokens; that is the approximation of a
  // context shift. The KV cache is host memory (SequenceState) whatever the plan puts on a GPU,
  // so there is no device copy to shift. Keys of an f16 or q8_0 cache are decoded, rotated and
  // encoded again (KvCache::Shift).
  absl::Status ShiftCache(SequenceState& state, int64_t n_past, int64_t keep,
                          int64_t discard) const;

 private:
  // state.normed = norm_act(rmsnorm(x) · weight) for the n tokens; returns the bytes read.
  uint64_t Normalize(SequenceState& state, int64_t n, const float* weight) const;
  // x += attention(normed) for layer l; returns the weight bytes read, adds the KV bytes.
  uint64_t Attention(SequenceState& state, int64_t l, int64_t pos0, int64_t n,
                     ForwardStats& stats) const;
  // x += ffn[l](normed); tells the observer.
  absl::StatusOr<uint64_t> Ffn(SequenceState& state, int64_t l, int64_t pos0,
                               std::span<const int32_t> tokens, ForwardObserver* observer) const;
  // logits_out = output · rmsnorm(x) · output_norm for the rows that are wanted.
  uint64_t Classify(SequenceState& state, int64_t n, Logits logits, float* logits_out) const;

  const Model& model_;
  ExecutorOptions options_;
  std::vector<std::unique_ptr<LayerFfn>> ffn_;
};

}  // namespace pinfer
