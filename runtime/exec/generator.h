// Text generation over a session: evaluate the prompt in batches, then sample and evaluate one
// token at a time, reporting each token as soon as it is chosen (so that callers stream it).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/exec/session.h"
#include "runtime/text/sampler.h"
#include "runtime/text/tokenizer.h"

namespace pinfer {

struct GenerationOptions {
  int64_t max_tokens = -1;  // -1: until EOS or a full context
  bool stop_at_eos = true;  // EOS ends the generation and is not reported
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated, in order (without the final EOS)
  bool hit_eos = false;
  bool context_full = false;
  bool stopped_by_caller = false;
  // The last generated token when it was not evaluated (generation stopped right after choosing
  // it); a caller that continues the conversation evaluates it first. -1 otherwise.
  int32_t pending_token = -1;
  ForwardStats prompt;  // evaluating the prompt
  ForwardStats decode;  // evaluating generated tokens one by one
};

// Appends `prompt` (not empty) to the session, then generates. `on_token` is called with each
// chosen token before it is evaluated; returning false stops the generation. The sampler sees the
// prompt and the generated tokens through Accept().
absl::StatusOr<GenerationResult> Generate(Session& session, Sampler& sampler,
                                          const Tokenizer& tokenizer,
                                          std::span<const int32_t> prompt,
                                          const GenerationOptions& options,
                                          const std::function<bool(int32_t)>& on_token);

// How a prompt that does not fit the context is handled.
struct PromptFit {
  std::vector<int32_t> tokens;
  int64_t dropped = 0;  // tokens removed by truncation
};
// Checks that `prompt` fits a context of `context_length` positions. When it does not: with
// `truncate`, keeps the first token if it is BOS and the most recent tokens, leaving room for
// min(max_tokens, context/2) generated tokens (context/2 when max_tokens is -1); without, fails
// with a clear message.
absl::StatusOr<PromptFit> FitPromptToContext(std::vector<int32_t> prompt, int64_t context_length,
                                             int64_t max_tokens, bool truncate, int32_t bos);

}  // namespace pinfer
