#include "runtime/exec/generator.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace pinfer {

Generator::Generator(Session& session, Sampler& sampler, const Tokenizer& tokenizer,
                     GenerationOptions options)
    : session_(session), sampler_(sampler), tokenizer_(tokenizer), options_(std::move(options)) {}

absl::Status Generator::Start(std::span<const int32_t> prompt) {
  if (running()) return absl::FailedPreconditionError("a generation is already running");
  if (prompt.empty()) {
    return absl::InvalidArgumentError(
        "nothing to generate from: the prompt is empty and the model adds no BOS token");
  }
  const int64_t n = static_cast<int64_t>(prompt.size());
  const int64_t earlier_shifts = context_shifts_;  // MakeRoom changes nothing when it fails
  if (!MakeRoom(n)) {
    return absl::OutOfRangeError(absl::StrCat(
        "the context is full: a prompt of ", n, " tokens at position ", session_.position(),
        " exceeds the context length ", session_.context_length()));
  }
  context_shifts_ -= earlier_shifts;  // this generation's own
  prompt_.assign(prompt.begin(), prompt.end());
  prompt_done_ = 0;
  generated_ = 0;
  pending_ = -1;
  prompt_stats_ = {};
  decode_stats_ = {};
  end_ = GenerationEnd::kRunning;
  started_ = true;
  return absl::OkStatus();
}

size_t Generator::NextChunk(int64_t max_prompt_tokens) const {
  size_t n = prompt_.size() - prompt_done_;
  if (options_.prompt_batch > 0) n = std::min(n, static_cast<size_t>(options_.prompt_batch));
  if (max_prompt_tokens > 0) n = std::min(n, static_cast<size_t>(max_prompt_tokens));
  return n;
}

Generator::Pass Generator::NextPass(int64_t max_prompt_tokens) const {
  if (!running()) return {};
  if (prompt_done_ < prompt_.size()) {
    const size_t n = NextChunk(max_prompt_tokens);
    const bool last = prompt_done_ + n == prompt_.size();
    return {std::span<const int32_t>(prompt_).subspan(prompt_done_, n),
            last ? Logits::kLast : Logits::kNone};
  }
  return {std::span<const int32_t>(&pending_, 1), Logits::kLast};
}

absl::StatusOr<GenerationStep> Generator::Step() {
  if (!running()) return absl::FailedPreconditionError("no generation is running");
  const Pass pass = NextPass();
  const ForwardStats before = session_.stats();
  absl::StatusOr<std::span<const float>> logits = session_.Evaluate(pass.tokens, pass.logits);
  if (!logits.ok()) return logits.status();
  return Consume(pass, *logits, session_.stats() - before);
}

GenerationStep Generator::Consume(const Pass& evaluated, std::span<const float> logits,
                                  const ForwardStats& cost) {
  GenerationStep step;
  if (!running()) return step;
  if (prompt_done_ < prompt_.size()) {
    const size_t n = evaluated.tokens.size();
    // The sampler's repetition penalty counts the prompt too.
    for (size_t i = prompt_done_; i < prompt_done_ + n; ++i) sampler_.Accept(prompt_[i]);
    prompt_done_ += n;
    step.prompt_tokens = static_cast<int64_t>(n);
    prompt_stats_ += cost;
    if (prompt_done_ < prompt_.size()) return step;
  } else {
    pending_ = -1;
    decode_stats_ += cost;
  }
  Choose(logits, step);
  return step;
}

bool Generator::MakeRoom(int64_t n) {
  const int64_t past = session_.position();
  const int64_t room = session_.context_length() - past;
  if (n <= room) return true;
  if (!options_.context_shift) return false;
  // llama.cpp's n_discard = (n_past - n_keep) / 2, but at least what is needed (llama.cpp would
  // drop nothing when n_keep is n_past - 1).
  const int64_t keep = std::clamp<int64_t>(options_.keep_tokens, 0, past);
  const int64_t discard = std::max((past - keep) / 2, n - room);
  if (discard < 1 || keep + discard > past) return false;
  // Cannot fail: the arguments are the ones ShiftContext accepts.
  if (!session_.ShiftContext(keep, discard).ok()) return false;
  ++context_shifts_;
  if (options_.on_context_shift) options_.on_context_shift({keep, discard, session_.position()});
  return true;
}

bool Generator::IsEndToken(int32_t token) const {
  if (options_.stop_at_eos && tokenizer_.IsEndOfGeneration(token)) return true;
  return std::find(options_.end_tokens.begin(), options_.end_tokens.end(), token) !=
         options_.end_tokens.end();
}

void Generator::Choose(std::span<const float> logits, GenerationStep& step) {
  const bool budget_spent = options_.max_tokens >= 0 && generated_ >= options_.max_tokens;
  if (!budget_spent) {
    const int32_t token = sampler_.Sample(logits);
    if (IsEndToken(token)) {
      end_ = GenerationEnd::kEndToken;
      step.end = end_;
      return;
    }
    sampler_.Accept(token);
    ++generated_;
    pending_ = token;
    step.token = token;
  }
  // The last token is not evaluated: nothing would read its logits.
  if (options_.max_tokens >= 0 && generated_ >= options_.max_tokens) {
    end_ = GenerationEnd::kMaxTokens;
  } else if (!MakeRoom(1)) {
    end_ = GenerationEnd::kContextFull;
  }
  step.end = end_;
}

void Generator::Stop() {
  if (running()) end_ = GenerationEnd::kStoppedByCaller;
}

absl::StatusOr<GenerationResult> Generate(Session& session, Sampler& sampler,
                                          const Tokenizer& tokenizer,
                                          std::span<const int32_t> prompt,
                                          const GenerationOptions& options,
                                          const std::function<bool(int32_t)>& on_token) {
  Generator generator(session, sampler, tokenizer, options);
  if (absl::Status s = generator.Start(prompt); !s.ok()) return s;
  GenerationResult result;
  while (generator.running()) {
    absl::StatusOr<GenerationStep> step = generator.Step();
    if (!step.ok()) return step.status();
    if (step->token < 0) continue;
    result.tokens.push_back(step->token);
    // The caller's word comes first, even on the step that ends the generation anyway.
    if (on_token && !on_token(step->token)) {
      generator.Stop();
      result.stopped_by_caller = true;
      break;
    }
  }
  if (!result.stopped_by_caller) {
    result.hit_eos = generator.end() == GenerationEnd::kEndToken;
    result.context_full = generator.end() == GenerationEnd::kContextFull;
  }
  result.pending_token = generator.pending_token();
  result.context_shifts = generator.context_shifts();
  result.prompt = generator.prompt_stats();
  result.decode = generator.decode_stats();
  return result;
}

absl::StatusOr<PromptFit> FitPromptToContext(std::vector<int32_t> prompt, int64_t context_length,
                                             int64_t max_tokens, bool truncate, int32_t bos) {
  PromptFit fit;
  const int64_t n = static_cast<int64_t>(prompt.size());
  if (n <= context_length) {
    fit.tokens = std::move(prompt);
    return fit;
  }
  if (!truncate) {
    return absl::OutOfRangeError(
        absl::StrCat("the prompt has ", n, " tokens, more than the context of ", context_length,
                     " (enlarge it with -c, or pass --truncate to keep the end of the prompt)"));
  }
  const int64_t half = std::max<int64_t>(1, context_length / 2);
  const int64_t room = max_tokens < 0 ? half : std::clamp<int64_t>(max_tokens, 1, half);
  const int64_t keep = std::max<int64_t>(1, context_length - room);
  const bool keep_bos = !prompt.empty() && prompt.front() == bos;
  const int64_t tail = std::max<int64_t>(0, keep - (keep_bos ? 1 : 0));
  if (keep_bos) fit.tokens.push_back(bos);
  fit.tokens.insert(fit.tokens.end(), prompt.end() - tail, prompt.end());
  fit.dropped = n - static_cast<int64_t>(fit.tokens.size());
  return fit;
}

}  // namespace pinfer
