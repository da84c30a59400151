// One sequence being evaluated over a shared Executor (see executor.h for the design): its
// SequenceState (KV cache), the tokens evaluated so far, the accounting of bytes read and time
// spent, and the BatchState (scratch) it evaluates with: its own, or one shared with other
// sessions (a server's slots), which Session::EvaluateTogether also uses to evaluate several
// sessions in one batched forward pass.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/forward_observer.h"

namespace pinfer {

struct SessionOptions {
  int64_t context_length = 0;  // positions the KV cache holds; 0: the model's training context
  // How many sessions of this size the caller will hold at once (a server's slots): the memory
  // check counts all of them.
  int64_t sequences = 1;
  // The scratch the session evaluates with, shared with other sessions (the memory check counts
  // it once); null: a scratch of its own for the executor's batch size.
  std::shared_ptr<BatchState> batch = nullptr;
  // What the KV cache stores: f16 (the default, as llama.cpp's), f32 or q8_0 (kv_cache.h).
  DType cache_type = kDefaultKvCacheType;
};

// The context a session gets: `requested`, or the model's training context when 0, for
// `sequences` KV caches and one scratch of `batch_size` tokens. Refused with the numbers (bytes
// needed, bytes available, the largest context that fits) when `sequences` sessions of that context
// would not fit in the memory available; the model's own context is shortened to what fits instead,
// since the user did not ask for it. The KV cache counts at the bytes of `cache_type`.
absl::StatusOr<int64_t> ContextThatFits(const ModelConfig& config, int64_t requested,
                                        int64_t batch_size, int64_t sequences,
                                        std::optional<uint64_t> available_bytes,
                                        DType cache_type = kDefaultKvCacheType);

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
  // Why Evaluate would refuse `tokens` (empty, beyond the context, an id outside the vocabulary);
  // OK when it would not.
  absl::Status CanEvaluate(std::span<const int32_t> tokens) const;

  // One session's part of a batched pass (EvaluateTogether).
  struct Pass {
    Session* session = nullptr;
    std::span<const int32_t> tokens;
    Logits logits = Logits::kLast;
  };
  // Evaluates the passes of distinct sessions over one executor in ONE forward pass over `batch`
  // (their tokens together at most its capacity): the weights are read once for every row, each
  // session's KV cache takes its own. Returns each pass's logits (valid until its session's next
  // evaluation) in order. Fails, evaluating nothing, when any pass would fail Evaluate's checks.
  static absl::StatusOr<std::vector<std::span<const float>>> EvaluateTogether(
      std::span<const Pass> passes, BatchState& batch);

  int64_t position() const { return static_cast<int64_t>(tokens_.size()); }
  int64_t context_length() const { return state_.context; }
  const std::vector<int32_t>& tokens() const { return tokens_; }
  // Forgets everything after the first `n` tokens (their KV rows are overwritten by what comes
  // next). Truncate(0) empties the session.
  void Truncate(int64_t n);
  void Reset() { Truncate(0); }
  // The context shift (Executor::ShiftCache): forgets the `discard` tokens after the first `keep`
  // ones; the later ones move down to continue from position() - discard. Fails, changing
  // nothing, unless 0 <= keep, 1 <= discard and keep + discard <= position().
  absl::Status ShiftContext(int64_t keep, int64_t discard);

  // Not owned; nullptr turns it off.
  void SetObserver(ForwardObserver* observer) { observer_ = observer; }

  const ForwardStats& stats() const { return stats_; }
  void ResetStats() { stats_ = {}; }
  // Bytes of the KV cache, and what it stores.
  uint64_t KvCacheBytes() const { return state_.kv.Bytes(); }
  DType KvCacheType() const { return state_.kv.type(); }

  const Executor& executor() const { return executor_; }
  // The KV cache, for tests that look at the cache rows.
  const SequenceState& state() const { return state_; }

 private:
  Session(Executor& executor, SequenceState state, std::shared_ptr<BatchState> batch);
  // This session's entry of a pass of `tokens` at its current position, its logits into logits_
  // at `logits_offset` rows.
  BatchEntry Entry(std::span<const int32_t> tokens, Logits logits, size_t logits_offset);

  Executor& executor_;
  SequenceState state_;
  std::shared_ptr<BatchState> batch_;
  std::vector<int32_t> tokens_;
  std::vector<float> logits_;  // [vocab] or [n, vocab]
  ForwardObserver* observer_ = nullptr;
  ForwardStats stats_;
};

}  // namespace pinfer
