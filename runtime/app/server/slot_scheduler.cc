#include "runtime/app/server/slot_scheduler.h"

#include <algorithm>
#include <span>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace pinfer {

const char* FinishReasonName(FinishReason reason) {
  return reason == FinishReason::kStop ? "stop" : "length";
}

std::string Generation::Progress::Text() const { return absl::StrJoin(pieces, ""); }

Generation::Progress Generation::Wait(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait_for(lock, timeout, [this] { return has_news_; });
  Progress progress = progress_;
  progress_.pieces.clear();
  has_news_ = false;
  return progress;
}

void Generation::SetRunning(int64_t cached_tokens) {
  std::lock_guard<std::mutex> lock(mutex_);
  progress_.phase = Phase::kRunning;
  progress_.prompt_tokens = static_cast<int64_t>(request_.prompt.size());
  progress_.cached_tokens = cached_tokens;
  has_news_ = true;
  changed_.notify_all();
}

void Generation::AddPiece(std::string piece, int64_t completion_tokens) {
  std::lock_guard<std::mutex> lock(mutex_);
  progress_.completion_tokens = completion_tokens;
  if (piece.empty()) return;
  progress_.pieces.push_back(std::move(piece));
  has_news_ = true;
  changed_.notify_all();
}

void Generation::Finish(absl::Status status, FinishReason reason, std::string rest,
                        int64_t completion_tokens) {
  std::lock_guard<std::mutex> lock(mutex_);
  progress_.phase = Phase::kFinished;
  progress_.status = std::move(status);
  progress_.finish_reason = reason;
  if (!rest.empty()) progress_.pieces.push_back(std::move(rest));
  progress_.completion_tokens = completion_tokens;
  has_news_ = true;
  changed_.notify_all();
}

SlotScheduler::SlotScheduler(const Tokenizer& tokenizer, const SchedulerOptions& options)
    : tokenizer_(tokenizer), options_(options) {}

absl::StatusOr<std::unique_ptr<SlotScheduler>> SlotScheduler::Create(
    Executor& executor, const Tokenizer& tokenizer, const SessionOptions& session_options,
    const SchedulerOptions& options) {
  if (options.parallel < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--parallel must be 1 or more slots, got ", options.parallel));
  }
  if (options.queue_length < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--queue must be 0 or more requests, got ", options.queue_length));
  }
  const int64_t batch_tokens = options.batch_tokens > 0
                                   ? options.batch_tokens
                                   : std::max<int64_t>(executor.batch_size(), options.parallel);
  if (batch_tokens < options.parallel) {
    return absl::InvalidArgumentError(
        absl::StrCat("--batch-tokens must be at least --parallel (", options.parallel,
                     "): each step takes a token of every generating slot; got ", batch_tokens));
  }
  std::unique_ptr<SlotScheduler> scheduler(new SlotScheduler(tokenizer, options));
  scheduler->batch_tokens_ = batch_tokens;
  // The step's scratch, for all slots together.
  absl::StatusOr<BatchState> batch = BatchState::Create(executor.config(), batch_tokens);
  if (!batch.ok()) return batch.status();
  scheduler->batch_ = std::make_shared<BatchState>(*std::move(batch));
  scheduler->slots_.resize(static_cast<size_t>(options.parallel));
  // The memory check counts every slot: --parallel 8 x -c needs eight KV caches.
  SessionOptions per_slot = session_options;
  per_slot.sequences = options.parallel;
  per_slot.batch = scheduler->batch_;
  for (size_t i = 0; i < scheduler->slots_.size(); ++i) {
    Slot& slot = scheduler->slots_[i];
    slot.index = static_cast<int>(i);
    absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(executor, per_slot);
    if (!session.ok()) return session.status();
    slot.session = *std::move(session);
    scheduler->kv_cache_bytes_ += slot.session->KvCacheBytes();
  }
  scheduler->context_length_ = scheduler->slots_.front().session->context_length();
  scheduler->thread_ = std::thread([s = scheduler.get()] { s->Loop(); });
  return scheduler;
}

SlotScheduler::~SlotScheduler() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<std::shared_ptr<Generation>> SlotScheduler::Submit(GenerationRequest request) {
  auto generation = std::make_shared<Generation>(std::move(request));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (draining_ || stopping_) return absl::UnavailableError("the server is shutting down");
    const size_t in_system = static_cast<size_t>(busy_slots_) + queue_.size();
    if (in_system >= slots_.size() + static_cast<size_t>(options_.queue_length)) {
      return absl::ResourceExhaustedError(
          absl::StrCat("the server is busy: ", slots_.size(), " slot",
                       slots_.size() == 1 ? "" : "s", " working and ", queue_.size(), " request",
                       queue_.size() == 1 ? "" : "s", " waiting (the queue's limit); retry later"));
    }
    queue_.push_back(generation);
  }
  wake_.notify_all();
  return generation;
}

void SlotScheduler::Drain(std::chrono::milliseconds grace) {
  std::unique_lock<std::mutex> lock(mutex_);
  draining_ = true;
  cut_after_ = Clock::now() + grace;
  wake_.notify_all();
  slot_freed_.wait(lock, [this] { return busy_slots_ == 0 && queue_.empty(); });
}

SchedulerStats SlotScheduler::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  SchedulerStats s;
  s.slots = static_cast<int>(slots_.size());
  s.batch_tokens = batch_tokens_;
  s.busy_slots = busy_slots_;
  s.queued = static_cast<int>(queue_.size());
  s.finished = finished_;
  s.generated_tokens = generated_tokens_;
  s.prompt_tokens = prompt_tokens_;
  s.prompt_cache_hits = prompt_cache_hits_;
  s.cached_prompt_tokens = cached_prompt_tokens_;
  s.steps = steps_;
  return s;
}

void SlotScheduler::AdmitLocked() {
  const Clock::time_point now = Clock::now();
  for (auto it = queue_.begin(); it != queue_.end();) {
    Generation& g = **it;
    if (stopping_ || draining_) {
      g.Finish(absl::UnavailableError("the server is shutting down"), FinishReason::kStop, "", 0);
    } else if (g.cancelled()) {
      g.Finish(absl::CancelledError("the client went away"), FinishReason::kStop, "", 0);
    } else if (now >= g.request().deadline) {
      g.Finish(absl::DeadlineExceededError("the request timed out waiting for a free slot"),
               FinishReason::kStop, "", 0);
    } else {
      ++it;
      continue;
    }
    ++finished_;
    it = queue_.erase(it);
  }
  while (!queue_.empty()) {
    Slot* slot = BestFreeSlotLocked(queue_.front()->request().prompt);
    if (slot == nullptr) break;
    std::shared_ptr<Generation> generation = std::move(queue_.front());
    queue_.pop_front();
    StartLocked(*slot, std::move(generation));
  }
  slot_freed_.notify_all();  // Drain() waits for the queue to empty too
}

namespace {

// How many tokens `a` and `b` share at their start.
int64_t CommonPrefix(std::span<const int32_t> a, std::span<const int32_t> b) {
  const auto [end_a, end_b] = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
  return end_a - a.begin();
}

}  // namespace

SlotScheduler::Slot* SlotScheduler::BestFreeSlotLocked(const std::vector<int32_t>& prompt) {
  // As llama.cpp's server routes: the slot whose cache holds the longest prefix of the prompt,
  // when that covers at least half of it; else the least recently used slot (an unused one first),
  // so that a prompt sharing only a few tokens (BOS) does not evict a cache another could reuse.
  Slot* match = nullptr;
  Slot* oldest = nullptr;
  int64_t longest = 0;
  for (Slot& slot : slots_) {
    if (slot.generation) continue;
    const int64_t common = CommonPrefix(slot.session->tokens(), prompt);
    if (2 * common >= static_cast<int64_t>(prompt.size()) &&
        (common > longest || (common == longest && slot.last_used < match->last_used))) {
      match = &slot;
      longest = common;
    }
    if (oldest == nullptr || slot.last_used < oldest->last_used) oldest = &slot;
  }
  return match != nullptr ? match : oldest;
}

void SlotScheduler::Loop() {
  std::vector<Slot*> ready;
  while (true) {
    bool stopping = false;
    bool cut = false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || busy_slots_ > 0 || !queue_.empty(); });
      AdmitLocked();
      stopping = stopping_;
      cut = stopping_ || (draining_ && Clock::now() >= cut_after_);
      if (stopping && busy_slots_ == 0) return;
    }
    bool held = false;
    bool progressed = false;
    ready.clear();
    for (Slot& slot : slots_) {
      if (!slot.generation) continue;
      if (slot.generation->cancelled()) {
        Release(slot, absl::CancelledError("the client went away"), FinishReason::kStop);
      } else if (cut || Clock::now() >= slot.generation->request().deadline) {
        Release(slot, absl::OkStatus(), FinishReason::kLength);
      } else if (options_.hold && options_.hold(*slot.generation, slot.generator->generated())) {
        held = true;
        continue;
      } else {
        ready.push_back(&slot);
      }
      progressed = true;
    }
    if (!ready.empty()) Step(ready);
    if (held && !progressed) {
      // Only held slots (a test's): look again soon, or at once for new work or a drain.
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait_for(lock, std::chrono::milliseconds(1));
    }
  }
}

void SlotScheduler::StartLocked(Slot& slot, std::shared_ptr<Generation> generation) {
  const GenerationRequest& request = generation->request();
  GenerationOptions options;
  options.max_tokens = request.max_tokens;
  options.end_tokens = request.end_tokens;
  // The prompt cache: keep the prefix the slot's KV cache shares with the prompt, but evaluate at
  // least the prompt's last token (its logits choose the first generated token).
  const std::span<const int32_t> prompt(request.prompt);
  const int64_t cached = std::min<int64_t>(CommonPrefix(slot.session->tokens(), prompt),
                                           static_cast<int64_t>(prompt.size()) - 1);
  slot.session->Truncate(cached);
  slot.sampler.emplace(request.sampling);
  // The sampler sees the whole prompt, as without the cache (its repetition penalty counts it).
  for (int64_t i = 0; i < cached; ++i) slot.sampler->Accept(prompt[static_cast<size_t>(i)]);
  slot.generator.emplace(*slot.session, *slot.sampler, tokenizer_, std::move(options));
  if (absl::Status started = slot.generator->Start(prompt.subspan(static_cast<size_t>(cached)));
      !started.ok()) {
    // The caller checks requests, so this is a bug there; the client gets the reason anyway.
    slot.generator.reset();
    slot.sampler.reset();
    generation->Finish(std::move(started), FinishReason::kStop, "", 0);
    ++finished_;
    return;
  }
  if (cached > 0) {
    ++prompt_cache_hits_;
    cached_prompt_tokens_ += cached;
  }
  slot.text.emplace(request.stop);
  slot.generation = std::move(generation);
  slot.admitted = ++admissions_;
  ++busy_slots_;
  slot.generation->SetRunning(cached);
}

void SlotScheduler::Step(const std::vector<Slot*>& ready) {
  // The step's passes: a token of every generating slot, then prompt chunks, first admitted
  // first, while the budget lasts (Create makes it hold a token of every slot).
  std::vector<Slot*> order = ready;
  std::stable_sort(order.begin(), order.end(), [](const Slot* a, const Slot* b) {
    const bool a_decodes = a->generator->prompt_left() == 0;
    const bool b_decodes = b->generator->prompt_left() == 0;
    if (a_decodes != b_decodes) return a_decodes;
    return a->admitted < b->admitted;
  });
  std::vector<Slot*> slots;
  std::vector<Generator::Pass> passes;
  std::vector<Session::Pass> evaluated;
  int64_t budget = batch_tokens_;
  for (Slot* slot : order) {
    if (budget <= 0) break;
    const Generator::Pass pass = slot->generator->NextPass(budget);
    // A pass Evaluate would refuse ends its own generation only.
    if (absl::Status s = slot->session->CanEvaluate(pass.tokens); !s.ok()) {
      Release(*slot, s, FinishReason::kStop);
      continue;
    }
    budget -= static_cast<int64_t>(pass.tokens.size());
    slots.push_back(slot);
    passes.push_back(pass);
    evaluated.push_back({slot->session.get(), pass.tokens, pass.logits});
  }
  if (slots.empty()) return;
  std::vector<ForwardStats> before;
  before.reserve(slots.size());
  for (Slot* slot : slots) before.push_back(slot->session->stats());
  absl::StatusOr<std::vector<std::span<const float>>> logits =
      Session::EvaluateTogether(evaluated, *batch_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++steps_;
  }
  if (!logits.ok()) {
    for (Slot* slot : slots) Release(*slot, logits.status(), FinishReason::kStop);
    return;
  }
  for (size_t i = 0; i < slots.size(); ++i) {
    Slot& slot = *slots[i];
    const GenerationStep step =
        slot.generator->Consume(passes[i], (*logits)[i], slot.session->stats() - before[i]);
    Advance(slot, step);
  }
}

void SlotScheduler::Advance(Slot& slot, const GenerationStep& step) {
  if (step.prompt_tokens > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    prompt_tokens_ += step.prompt_tokens;
  }
  if (step.token >= 0) {
    const bool stopped = slot.text->Append(tokenizer_.TokenToPiece(step.token));
    slot.generation->AddPiece(slot.text->TakeReady(), slot.generator->generated());
    if (stopped) {
      Release(slot, absl::OkStatus(), FinishReason::kStop);
      return;
    }
  }
  switch (step.end) {
    case GenerationEnd::kRunning:
      return;  // the token just chosen is evaluated at the slot's next step
    case GenerationEnd::kMaxTokens:
    case GenerationEnd::kContextFull:
      Release(slot, absl::OkStatus(), FinishReason::kLength);
      return;
    case GenerationEnd::kEndToken:
    case GenerationEnd::kStoppedByCaller:
      Release(slot, absl::OkStatus(), FinishReason::kStop);
      return;
  }
}

void SlotScheduler::Release(Slot& slot, absl::Status status, FinishReason reason) {
  const int64_t generated = slot.generator ? slot.generator->generated() : 0;
  // The counters first: a client that has its answer sees them up to date.
  {
    std::lock_guard<std::mutex> lock(mutex_);
    --busy_slots_;
    ++finished_;
    generated_tokens_ += generated;
  }
  slot.generation->Finish(std::move(status), reason, slot.text ? slot.text->TakeRest() : "",
                          generated);
  // The session keeps its tokens: the prompt cache of the slot's next generation.
  slot.last_used = ++releases_;
  slot.generation.reset();
  slot.text.reset();
  slot.generator.reset();
  slot.sampler.reset();
  slot_freed_.notify_all();
}

}  // namespace pinfer
