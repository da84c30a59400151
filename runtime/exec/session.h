// One sequence being evaluated over a shared Executor (see executor.h for the design): the KV
// cache, scratch, the position and the accounting of bytes read and time spent.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/ffn.h"
#include "runtime/exec/forward_observer.h"

namespace pinfer {

struct SessionOptions {
  int64_t context_length = 0;  // positions the KV cache holds; 0: the model's training context
};

// Which logits an Evaluate call returns.
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
  uint64_t kv_bytes = 0;      // KV cache bytes read by attention
  double seconds = 0.0;

  ForwardStats& operator+=(const ForwardStats& other);
  ForwardStats operator-(const ForwardStats& other) const;
  // (weight + KV bytes) per second, in GB/s (10^9).
  double EffectiveGBps() const;
};

class Session {
 public:
  static absl::StatusOr<std::unique_ptr<Session>> Create(Executor& executor,
                                                         const SessionOptions& options = {});
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Appends `tokens` at the current position, in batches of the executor's batch size, and returns
  // the requested logits (valid until the next call). Fails, evaluating nothing, when the tokens do
  // not fit the context or an id is outside the vocabulary.
  absl::StatusOr<std::span<const float>> Evaluate(std::span<const int32_t> tokens,
                                                  Logits logits = Logits::kLast);

  int64_t position() const { return static_cast<int64_t>(tokens_.size()); }
  int64_t context_length() const { return context_length_; }
  const std::vector<int32_t>& tokens() const { return tokens_; }
  // Forgets everything after the first `n` tokens (their KV rows are overwritten by what comes
  // next). Truncate(0) empties the session.
  void Truncate(int64_t n);
  void Reset() { Truncate(0); }

  // Not owned; nullptr turns it off.
  void SetObserver(ForwardObserver* observer) { observer_ = observer; }

  const ForwardStats& stats() const { return stats_; }
  void ResetStats() { stats_ = {}; }
  // Bytes of the KV cache.
  uint64_t KvCacheBytes() const {
    return (key_cache_.size() + value_cache_.size()) * sizeof(float);
  }

  const Executor& executor() const { return executor_; }

 private:
  Session(Executor& executor, int64_t context_length);
  // One pass over `tokens` (at most batch_size) at the current position. `logits_out` receives
  // [n, vocab] (all), [vocab] (last) or nothing.
  absl::Status Forward(std::span<const int32_t> tokens, Logits logits, float* logits_out);
  float* KeyRow(int64_t layer, int64_t pos);
  float* ValueRow(int64_t layer, int64_t pos);

  Executor& executor_;
  const Model& model_;
  int64_t context_length_;
  int64_t capacity_;  // tokens per pass
  std::vector<int32_t> tokens_;
  std::vector<float> key_cache_;    // [n_layers, context, kv_dim]
  std::vector<float> value_cache_;  // [n_layers, context, kv_dim]
  // Scratch for one pass.
  std::vector<float> x_;          // [capacity, dim]    the residual stream
  std::vector<float> normed_;     // [capacity, dim]
  std::vector<float> q_;          // [capacity, q_dim]
  std::vector<float> attention_;  // [capacity, q_dim]
  std::vector<float> projected_;  // [capacity, dim]
  FfnWorkspace ffn_workspace_;
  std::vector<float> logits_;  // [vocab] or [n, vocab]
  ForwardObserver* observer_ = nullptr;
  ForwardStats stats_;
};

}  // namespace pinfer
