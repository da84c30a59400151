#include "runtime/app/server/slot_scheduler.h"

#include <algorithm>
#include <span>
#include <utility>

#include "absl/strings/str_cat.h"

namespace pinfer {

const char* FinishReasonName(FinishReason reason) {
  return reason == FinishReason::kStop ? "stop" : "length";
}

Generation::Progress Generation::Wait(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait_for(lock, timeout, [this] { return has_news_; });
  Progress progress = progress_;
  progress_.text.clear();
  has_news_ = false;
  return progress;
}

void Generation::SetRunning() {
  std::lock_guard<std::mutex> lock(mutex_);
  progress_.phase = Phase::kRunning;
  progress_.prompt_tokens = static_cast<int64_t>(request_.prompt.size());
  has_news_ = true;
  changed_.notify_all();
}

void Generation::AddText(std::string text, int64_t completion_tokens) {
  std::lock_guard<std::mutex> lock(mutex_);
  progress_.completion_tokens = completion_tokens;
  if (text.empty()) return;
  progress_.text += text;
  has_news_ = true;
  changed_.notify_all();
}

void Generation::Finish(absl::Status status, FinishReason reason, std::string rest,
                        int64_t completion_tokens) {
  std::lock_guard<std::mutex> lock(mutex_);
  progress_.phase = Phase::kFinished;
  progress_.status = std::move(status);
  progress_.finish_reason = reason;
  progress_.text += rest;
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
  std::unique_ptr<SlotScheduler> scheduler(new SlotScheduler(tokenizer, options));
  scheduler->slots_.resize(static_cast<size_t>(options.parallel));
  for (Slot& slot : scheduler->slots_) {
    absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(executor, session_options);
    if (!session.ok()) return session.status();
    slot.session = *std::move(session);
    scheduler->kv_cache_bytes_ += slot.session->KvCacheBytes();
  }
  scheduler->context_length_ = scheduler->slots_.front().session->context_length();
  scheduler->batch_size_ = std::max<int64_t>(1, executor.batch_size());
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
  s.busy_slots = busy_slots_;
  s.queued = static_cast<int>(queue_.size());
  s.finished = finished_;
  s.generated_tokens = generated_tokens_;
  s.prompt_tokens = prompt_tokens_;
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
  for (Slot& slot : slots_) {
    if (queue_.empty()) break;
    if (slot.generation) continue;
    slot.generation = std::move(queue_.front());
    queue_.pop_front();
    const GenerationRequest& request = slot.generation->request();
    slot.session->Reset();
    slot.sampler.emplace(request.sampling);
    for (int32_t token : request.prompt) slot.sampler->Accept(token);
    slot.text.emplace(request.stop);
    slot.prompt_done = 0;
    slot.generated = 0;
    slot.pending = -1;
    slot.started = now;
    ++busy_slots_;
    slot.generation->SetRunning();
  }
  slot_freed_.notify_all();  // Drain() waits for the queue to empty too
}

void SlotScheduler::Loop() {
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
    for (Slot& slot : slots_) {
      if (!slot.generation) continue;
      if (slot.generation->cancelled()) {
        Release(slot, absl::CancelledError("the client went away"), FinishReason::kStop);
      } else if (cut || Clock::now() >= slot.generation->request().deadline) {
        Release(slot, absl::OkStatus(), FinishReason::kLength);
      } else {
        Step(slot);
      }
    }
  }
}

void SlotScheduler::Step(Slot& slot) {
  const std::vector<int32_t>& prompt = slot.generation->request().prompt;
  if (slot.prompt_done < prompt.size()) {
    const size_t n =
        std::min<size_t>(static_cast<size_t>(batch_size_), prompt.size() - slot.prompt_done);
    const bool last = slot.prompt_done + n == prompt.size();
    absl::StatusOr<std::span<const float>> logits =
        slot.session->Evaluate(std::span<const int32_t>(prompt).subspan(slot.prompt_done, n),
                               last ? Logits::kLast : Logits::kNone);
    if (!logits.ok()) {
      Release(slot, logits.status(), FinishReason::kStop);
      return;
    }
    slot.prompt_done += n;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      prompt_tokens_ += static_cast<int64_t>(n);
    }
    if (last) Advance(slot, *logits);
    return;
  }
  absl::StatusOr<std::span<const float>> logits =
      slot.session->Evaluate(std::span<const int32_t>(&slot.pending, 1), Logits::kLast);
  if (!logits.ok()) {
    Release(slot, logits.status(), FinishReason::kStop);
    return;
  }
  slot.pending = -1;
  Advance(slot, *logits);
}

void SlotScheduler::Advance(Slot& slot, std::span<const float> logits) {
  const GenerationRequest& request = slot.generation->request();
  const int32_t token = slot.sampler->Sample(logits);
  if (tokenizer_.IsEndOfGeneration(token) ||
      std::find(request.end_tokens.begin(), request.end_tokens.end(), token) !=
          request.end_tokens.end()) {
    Release(slot, absl::OkStatus(), FinishReason::kStop);
    return;
  }
  slot.sampler->Accept(token);
  ++slot.generated;
  const bool stopped = slot.text->Append(tokenizer_.TokenToPiece(token));
  slot.generation->AddText(slot.text->TakeReady(), slot.generated);
  if (stopped) {
    Release(slot, absl::OkStatus(), FinishReason::kStop);
  } else if (slot.generated >= request.max_tokens ||
             slot.session->position() >= slot.session->context_length()) {
    Release(slot, absl::OkStatus(), FinishReason::kLength);
  } else {
    slot.pending = token;  // evaluated at the slot's next step
  }
}

void SlotScheduler::Release(Slot& slot, absl::Status status, FinishReason reason) {
  // The counters first: a client that has its answer sees them up to date.
  {
    std::lock_guard<std::mutex> lock(mutex_);
    --busy_slots_;
    ++finished_;
    generated_tokens_ += slot.generated;
  }
  slot.generation->Finish(std::move(status), reason, slot.text ? slot.text->TakeRest() : "",
                          slot.generated);
  slot.generation.reset();
  slot.text.reset();
  slot.sampler.reset();
  slot_freed_.notify_all();
}

}  // namespace pinfer
