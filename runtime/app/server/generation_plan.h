// From a parsed OpenAI request to what a slot runs: the prompt's tokens (through the chat template
// for chat requests), the stop sequences and end tokens, and max_tokens resolved against the
// server's limit and the context; or the OpenAI error to answer instead.
#pragma once

#include <cstdint>
#include <string>
#include <variant>

#include "runtime/app/server/openai_protocol.h"
#include "runtime/app/server/slot_scheduler.h"
#include "runtime/text/chat_template.h"
#include "runtime/text/tokenizer.h"

namespace pinfer {

struct GenerationLimits {
  std::string model_name;      // a request naming another model gets 404
  int64_t context_length = 0;  // positions of a slot
  int64_t max_tokens = 0;      // --max-tokens
};

// The request's sampling is copied as it is (the caller draws a seed when none was given) and the
// deadline is left to the caller.
//   - model: empty or `limits.model_name`, else 404 model_not_found;
//   - prompt: a completion's text is encoded with BOS as the vocabulary says (as pi-run does);
//   token
//     ids must be in the vocabulary; chat messages go through `chat_template`, whose stop sequences
//     join the request's (and end the generation as a token when the vocabulary has them as one
//     piece);
//   - max_tokens: beyond the context, beyond --max-tokens, or more than the context leaves after
//   the
//     prompt is a 400 (code context_length_exceeded for the context); when absent, the largest that
//     fits, at most --max-tokens; a prompt that leaves no room is a 400.
std::variant<GenerationRequest, ApiError> PlanGeneration(const CompletionRequest& request,
                                                         const Tokenizer& tokenizer,
                                                         const ChatTemplate& chat_template,
                                                         const GenerationLimits& limits);

}  // namespace pinfer
