// Runs the server's generations: N slots, each a Session (its own KV cache) over the shared
// Executor, and a bounded queue of generations waiting for a slot.
//
// Continuous batching: forward passes run one at a time per process (the kernels use every
// thread), so one scheduler thread does all of them, and each of its steps is ONE batched forward
// pass that advances every busy slot at once (Session::EvaluateTogether: the weights are read once
// for all of them): one token of each generating slot, then chunks of the prompts being
// evaluated, first admitted first, within a budget of --batch-tokens tokens per step, so that a
// long prompt delays the others by a bounded step only. Generations join (admitted into free
// slots) and leave (finished, cancelled, cut) between steps.
//
// Prompt cache: a slot keeps the KV cache of its last generation when it is over (its session's
// tokens). A new generation goes to the free slot whose tokens share the longest prefix with its
// prompt when that prefix is at least half the prompt (as llama.cpp's server routes), else to the
// least recently used free slot (an unused one first); it evaluates only what its slot does not
// hold of the prompt (at least its last token, whose logits choose the first generated token),
// and the reused prefix counts in Progress::cached_tokens and the stats.
//
// The HTTP thread that submitted a generation waits on it (Generation::Wait) and takes its text as
// it comes, one piece per generated token (so that a stream sends each token in an event of its
// own, however late its reader looks); when its client goes away it cancels it, and the slot is
// free at the next step.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/generator.h"
#include "runtime/exec/session.h"
#include "runtime/text/completion_text.h"
#include "runtime/text/sampler.h"
#include "runtime/text/tokenizer.h"

namespace pinfer {

using Clock = std::chrono::steady_clock;

// What to generate, resolved and checked by the caller (the prompt fits the context with room for
// max_tokens).
struct GenerationRequest {
  std::vector<int32_t> prompt;  // not empty
  SamplerParams sampling;
  int64_t max_tokens = 16;          // >= 1
  std::vector<std::string> stop;    // stop sequences (text)
  std::vector<int32_t> end_tokens;  // tokens that end the generation besides EOS
  Clock::time_point deadline = Clock::time_point::max();  // queued past it: fails; running: cut
};

enum class FinishReason {
  kStop,    // EOS, an end token or a stop sequence
  kLength,  // max_tokens, a full context, the request's deadline, or the server shutting down
};
const char* FinishReasonName(FinishReason reason);  // "stop", "length"

// One generation, shared by the thread that waits for it and the scheduler thread that runs it.
class Generation {
 public:
  enum class Phase { kQueued, kRunning, kFinished };

  // What the waiting thread sees.
  struct Progress {
    Phase phase = Phase::kQueued;
    // The text released since the previous Wait, one piece per generated token, in order. Text
    // held back (a possible start of a stop sequence, an incomplete UTF-8 character) comes with
    // the piece of the token that releases it; tokens that release nothing add no piece.
    std::vector<std::string> pieces;
    absl::Status status;  // when finished: OK, or why it never ran (queue timeout, shutdown)
    FinishReason finish_reason = FinishReason::kStop;
    int64_t prompt_tokens = 0;
    int64_t cached_tokens = 0;      // of the prompt, reused from the slot's cache (not evaluated)
    int64_t completion_tokens = 0;  // generated, EOS or end token excluded
    std::string Text() const;       // the pieces joined
  };

  explicit Generation(GenerationRequest request) : request_(std::move(request)) {}
  const GenerationRequest& request() const { return request_; }

  // Returns as soon as there is new text or a new phase, or after `timeout` (then possibly with
  // nothing new). Takes the new pieces.
  Progress Wait(std::chrono::milliseconds timeout);
  // The client is gone: the scheduler stops the generation at its next round.
  void Cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

 private:
  friend class SlotScheduler;
  void SetRunning(int64_t cached_tokens);
  void AddPiece(std::string piece, int64_t completion_tokens);
  void Finish(absl::Status status, FinishReason reason, std::string rest,
              int64_t completion_tokens);

  const GenerationRequest request_;
  std::atomic<bool> cancelled_{false};
  std::mutex mutex_;
  std::condition_variable changed_;
  bool has_news_ = false;
  Progress progress_;
};

struct SchedulerOptions {
  int parallel = 1;       // slots
  int queue_length = 16;  // generations that may wait for a slot
  // Tokens per step, all slots together (--batch-tokens; at least `parallel`, since each step
  // takes a token of every generating slot); 0: the executor's batch size (-b), or `parallel`
  // when that is more.
  int64_t batch_tokens = 0;
  // For tests, which order events with it instead of racing the clock (no flag sets it; empty in
  // pi-server). Asked on the scheduler thread before each forward pass of a running generation,
  // with the tokens it has generated so far; true holds the generation there for this round. A
  // held generation keeps its slot, and cancellation, its deadline and a drain's cut still end it;
  // the other slots and the queue go on. While nothing but held slots is busy, the scheduler asks
  // again every millisecond.
  std::function<bool(const Generation& generation, int64_t generated)> hold;
};

struct SchedulerStats {
  int slots = 0;
  int64_t batch_tokens = 0;  // tokens per step
  int busy_slots = 0;
  int queued = 0;
  int64_t finished = 0;              // generations over (completed, cut, cancelled or refused)
  int64_t generated_tokens = 0;      // by the generations that left their slot
  int64_t prompt_tokens = 0;         // evaluated (cached ones excluded)
  int64_t prompt_cache_hits = 0;     // generations that reused at least one cached prompt token
  int64_t cached_prompt_tokens = 0;  // prompt tokens they reused
  int64_t steps = 0;                 // batched forward passes
};

class SlotScheduler {
 public:
  // Creates the slots' sessions (each with `session_options`) and starts the scheduler thread.
  static absl::StatusOr<std::unique_ptr<SlotScheduler>> Create(
      Executor& executor, const Tokenizer& tokenizer, const SessionOptions& session_options,
      const SchedulerOptions& options);
  // Fails what is queued, stops what runs, joins the thread.
  ~SlotScheduler();
  SlotScheduler(const SlotScheduler&) = delete;
  SlotScheduler& operator=(const SlotScheduler&) = delete;

  // Queues a generation. ResourceExhausted when the queue is full, Unavailable once draining.
  absl::StatusOr<std::shared_ptr<Generation>> Submit(GenerationRequest request);

  // For shutdown: refuses new generations, fails the queued ones (Unavailable), lets the running
  // ones finish for up to `grace`, then cuts them (finish reason "length"). Returns when every slot
  // is free.
  void Drain(std::chrono::milliseconds grace);

  int64_t context_length() const { return context_length_; }
  int64_t batch_tokens() const { return batch_tokens_; }
  // Bytes of the KV caches of all slots.
  uint64_t kv_cache_bytes() const { return kv_cache_bytes_; }
  SchedulerStats stats() const;

 private:
  struct Slot {
    int index = 0;
    std::unique_ptr<Session> session;        // its tokens: the prompt cache when free
    std::shared_ptr<Generation> generation;  // null: free
    std::optional<Sampler> sampler;
    std::optional<Generator> generator;  // over session and sampler
    std::optional<CompletionText> text;
    int64_t admitted = 0;   // admission order of its generation (prompts are served in it)
    int64_t last_used = 0;  // when its last generation left (0: never used)
  };

  SlotScheduler(const Tokenizer& tokenizer, const SchedulerOptions& options);
  void Loop();
  // Under mutex_: drops cancelled and expired queued generations, fills free slots.
  void AdmitLocked();
  // Under mutex_: the free slot for `prompt` (the prompt cache's routing above); null when none
  // is free.
  Slot* BestFreeSlotLocked(const std::vector<int32_t>& prompt);
  // Under mutex_: starts `generation` in the free `slot` after the prompt prefix its cache holds,
  // or finishes it with the error when its request cannot start (the slot stays free).
  void StartLocked(Slot& slot, std::shared_ptr<Generation> generation);
  // One batched forward pass over the `ready` slots within the step's token budget; frees the
  // slots whose generations are over.
  void Step(const std::vector<Slot*>& ready);
  // What a slot does after its share of a step.
  void Advance(Slot& slot, const GenerationStep& step);
  void Release(Slot& slot, absl::Status status, FinishReason reason);

  const Tokenizer& tokenizer_;
  const SchedulerOptions options_;
  int64_t context_length_ = 0;
  uint64_t kv_cache_bytes_ = 0;
  int64_t batch_tokens_ = 1;
  std::shared_ptr<BatchState> batch_;  // the scratch of a step, shared by the slots' sessions
  std::vector<Slot> slots_;            // touched by the scheduler thread only (and Create)
  int64_t admissions_ = 0;             // under mutex_
  int64_t releases_ = 0;               // scheduler thread

  mutable std::mutex mutex_;
  std::condition_variable wake_;  // new work, draining, stopping
  std::condition_variable slot_freed_;
  std::deque<std::shared_ptr<Generation>> queue_;
  int busy_slots_ = 0;
  bool draining_ = false;
  bool stopping_ = false;
  Clock::time_point cut_after_ = Clock::time_point::max();  // draining: running generations end
  int64_t finished_ = 0;
  int64_t generated_tokens_ = 0;
  int64_t prompt_tokens_ = 0;
  int64_t prompt_cache_hits_ = 0;
  int64_t cached_prompt_tokens_ = 0;
  int64_t steps_ = 0;
  std::thread thread_;
};

}  // namespace pinfer
