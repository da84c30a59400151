// The Llama-family forward pass, split into what is shared and what is per sequence.
//
//   Model     (runtime/model)  the mapped weights, read-only; one per process.
//   Executor  runs the forward pass: the model, the batch size for prompt processing and one
//             LayerFfn per layer (layer_ffn.h: dense by default; sparse and hybrid execution are
//             other parts and selections of the same mechanism). Shared by all sessions.
//   Session   (session.h) one sequence: its SequenceState (KV cache), the tokens
//             evaluated so far and the accounting. pi-server runs N sessions over one Executor.
//
// A layer, for a batch of n tokens at positions [pos0, pos0 + n) (Executor::Forward):
//   x += attention(norm(x))     norm: rmsnorm · attn_norm, then the norm activation (none, or a
//                               shifted ReLU); q, k, v, RoPE, the KV cache, causal grouped-query
//                               attention, the output projection
//   x += ffn[l](norm(x))        norm: rmsnorm · ffn_norm, then the norm activation
// then logits = output · rmsnorm(x) · output_norm (no norm activation on the final norm).
// Prompts are evaluated in batches of up to batch_size tokens (MatMul kernels), decode one token at
// a time (the same path with n = 1, where the kernels are matrix-vector products). A pass may hold
// several sequences (a server's slots: one token of each generating one, a chunk of a prompt):
// the weights are read once for all their rows, attention runs per sequence (BatchEntry).
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

// One sequence's memory for the forward pass: its KV cache.
struct SequenceState {
  int64_t context = 0;  // positions the KV cache holds
  KvCache kv;           // every layer's keys and values, in the cache's type (kv_cache.h)

  // Sized for `config`, the KV cache of `cache_type` (f32, f16 or q8_0); InvalidArgument for a
  // cache type the model cannot use, ResourceExhausted (naming the KV bytes) when memory runs out.
  static absl::StatusOr<SequenceState> Create(const ModelConfig& config, int64_t context,
                                              DType cache_type = kDefaultKvCacheType);
  // The bytes Create allocates, once every position is used.
  static uint64_t Bytes(const ModelConfig& config, int64_t context,
                        DType cache_type = kDefaultKvCacheType);
};

// The scratch of one forward pass: the rows of every sequence of the batch, concatenated. Shared
// by the sequences that take turns in passes (a server's slots share one, sized for its step's
// token budget), since passes run one at a time.
struct BatchState {
  int64_t capacity = 0;          // tokens per pass, all sequences together
  std::vector<float> x;          // [capacity, dim]    the residual stream
  std::vector<float> normed;     // [capacity, dim]
  std::vector<float> q;          // [capacity, q_dim]
  std::vector<float> k;          // [capacity, kv_dim] this pass's keys, before the caches
  std::vector<float> v;          // [capacity, kv_dim] and values
  std::vector<float> attention;  // [capacity, q_dim]
  std::vector<float> projected;  // [capacity, dim]
  std::vector<float> logits;     // [rows, vocab] when several sequences want logits (grown)
  FfnWorkspace ffn;

  // ResourceExhausted when memory runs out.
  static absl::StatusOr<BatchState> Create(const ModelConfig& config, int64_t capacity);
  static uint64_t Bytes(const ModelConfig& config, int64_t capacity);
};

// One sequence's share of a forward pass: `tokens` at positions [pos0, pos0 + n) of `sequence`.
struct BatchEntry {
  SequenceState* sequence = nullptr;
  int64_t pos0 = 0;
  std::span<const int32_t> tokens;
  Logits logits = Logits::kNone;
  float* logits_out = nullptr;          // [n, vocab] (kAll), [vocab] (kLast) or null
  ForwardObserver* observer = nullptr;  // may be null: sees this sequence's rows of each FFN
  // Gets this sequence's tokens, a pass, its KV bytes, and its share (by tokens) of the pass's
  // weight bytes and time: the weights are read once for the whole batch.
  ForwardStats* stats = nullptr;
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

  // One forward pass over the entries (distinct sequences, all their tokens together at most
  // the batch's capacity): every weight product runs once over the concatenated rows (q, k, v and
  // the output projection, each layer's FFN with n = all the tokens, the classifier over the rows
  // whose logits are wanted); RoPE, the KV writes and attention run per sequence, against its own
  // cache at its own positions. A single sequence is the case of one entry.
  absl::Status Forward(BatchState& batch, std::span<const BatchEntry> entries) const;

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
  // batch.normed = norm_act(rmsnorm(x) · weight) for the n rows; returns the bytes read.
  uint64_t Normalize(BatchState& batch, int64_t n, const float* weight) const;
  // x += attention(normed) for layer l over the n rows of the entries; returns the weight bytes.
  uint64_t Attention(BatchState& batch, std::span<const BatchEntry> entries, int64_t n,
                     int64_t l) const;
  // One sequence's attention for layer l: RoPE on its rows of q and k ([n, q_dim], [n, kv_dim]),
  // their KV rows encoded into its cache at [pos0, pos0 + n), causal attention into `out`.
  // Returns the KV bytes read (at the cache type's size).
  uint64_t Attend(SequenceState& sequence, int64_t l, int64_t pos0, int64_t n, float* q, float* k,
                  const float* v, float* out) const;
  // x += ffn[l](normed) over all n rows; tells each entry's observer of its rows.
  absl::StatusOr<uint64_t> Ffn(BatchState& batch, std::span<const BatchEntry> entries, int64_t n,
                               int64_t l) const;
  // The wanted rows' logits = output · rmsnorm(x) · output_norm, in one product.
  uint64_t Classify(BatchState& batch, std::span<const BatchEntry> entries) const;

  const Model& model_;
  ExecutorOptions options_;
  std::vector<std::unique_ptr<LayerFfn>> ffn_;
};

}  // namespace pinfer
