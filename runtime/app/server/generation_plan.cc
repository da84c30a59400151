#include "runtime/app/server/generation_plan.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace pinfer {
std::variant<GenerationRequest, ApiError> PlanGeneration(const CompletionRequest& request,
                                                         const Tokenizer& tokenizer,
                                                         const ChatTemplate& chat_template,
                                                         const GenerationLimits& limits) {
  if (!request.model.empty() && request.model != limits.model_name) {
    ApiError error;
    error.http_status = 404;
    error.code = "model_not_found";
    error.param = "model";
    error.message = absl::StrCat("the model '", request.model,
                                 "' does not exist; this server runs '", limits.model_name, "'");
    return error;
  }

  GenerationRequest plan;
  plan.sampling = request.sampling;
  plan.stop = request.stop;
  const bool chat = request.endpoint == Endpoint::kChatCompletions;
  const char* prompt_field = chat ? "messages" : "prompt";
  if (chat) {
    absl::StatusOr<std::vector<int32_t>> tokens = chat_template.Encode(request.messages, tokenizer);
    if (!tokens.ok()) return InvalidRequest(std::string(tokens.status().message()), "", "messages");
    plan.prompt = *std::move(tokens);
    for (const std::string& s : chat_template.StopSequences()) {
      plan.stop.push_back(s);
      if (const int32_t token = tokenizer.PieceToToken(s); token >= 0) {
        plan.end_tokens.push_back(token);
      }
    }
  } else if (request.prompt_is_tokens) {
    for (int32_t token : request.prompt_tokens) {
      if (token >= tokenizer.size()) {
        return InvalidRequest(absl::StrCat("token id ", token, " is outside the vocabulary of ",
                                           tokenizer.size(), " tokens"),
                              "", "prompt");
      }
    }
    plan.prompt = request.prompt_tokens;
  } else {
    plan.prompt = tokenizer.Encode(request.prompt, /*add_special=*/true);
  }
  if (plan.prompt.empty()) {
    return InvalidRequest("the prompt is empty and the model adds no BOS token", "", "prompt");
  }

  const int64_t context = limits.context_length;
  const int64_t prompt_tokens = static_cast<int64_t>(plan.prompt.size());
  if (!request.max_tokens) {
    if (prompt_tokens >= context) {
      return InvalidRequest(absl::StrCat("the prompt has ", prompt_tokens,
                                         " tokens, which leaves no room for a reply in the "
                                         "context of ",
                                         context, " tokens"),
                            "context_length_exceeded", prompt_field);
    }
    plan.max_tokens = std::min(limits.max_tokens, context - prompt_tokens);
    return plan;
  }
  plan.max_tokens = *request.max_tokens;
  if (plan.max_tokens > context) {
    return InvalidRequest(absl::StrCat("max_tokens ", plan.max_tokens, " is beyond the context of ",
                                       context, " tokens"),
                          "context_length_exceeded", "max_tokens");
  }
  if (plan.max_tokens > limits.max_tokens) {
    return InvalidRequest(
        absl::StrCat("max_tokens ", plan.max_tokens,
                     " is more than this server allows (--max-tokens ", limits.max_tokens, ")"),
        "", "max_tokens");
  }
  if (prompt_tokens + plan.max_tokens > context) {
    return InvalidRequest(
        absl::StrCat("the context is ", context, " tokens; the prompt has ", prompt_tokens,
                     " and max_tokens asks for ", plan.max_tokens, " more"),
        "context_length_exceeded", "max_tokens");
  }
  return plan;
}

}  // namespace pinfer
