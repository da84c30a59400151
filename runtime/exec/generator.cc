#include "runtime/exec/generator.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace pinfer {

absl::StatusOr<GenerationResult> Generate(Session& session, Sampler& sampler,
                                          const Tokenizer& tokenizer,
                                          std::span<const int32_t> prompt,
                                          const GenerationOptions& options,
                                          const std::function<bool(int32_t)>& on_token) {
  if (prompt.empty()) {
    return absl::InvalidArgumentError(
        "nothing to generate from: the prompt is empty and the model adds no BOS token");
  }
  GenerationResult result;
  const ForwardStats before_prompt = session.stats();
  absl::StatusOr<std::span<const float>> logits = session.Evaluate(prompt, Logits::kLast);
  if (!logits.ok()) return logits.status();
  result.prompt = session.stats() - before_prompt;
  for (int32_t token : prompt) sampler.Accept(token);

  const ForwardStats before_decode = session.stats();
  for (int64_t i = 0; options.max_tokens < 0 || i < options.max_tokens; ++i) {
    const int32_t token = sampler.Sample(*logits);
    if (options.stop_at_eos && tokenizer.IsEndOfGeneration(token)) {
      result.hit_eos = true;
      break;
    }
    result.tokens.push_back(token);
    sampler.Accept(token);
    result.pending_token = token;
    if (on_token && !on_token(token)) {
      result.stopped_by_caller = true;
      break;
    }
    if (options.max_tokens >= 0 && i + 1 == options.max_tokens) break;  // no need to evaluate it
    if (session.position() >= session.context_length()) {
      result.context_full = true;
      break;
    }
    logits = session.Evaluate(std::span<const int32_t>(&token, 1), Logits::kLast);
    if (!logits.ok()) return logits.status();
    result.pending_token = -1;
  }
  result.decode = session.stats() - before_decode;
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
