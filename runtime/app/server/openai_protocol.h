// OpenAI's HTTP API as pi-server speaks it: request bodies of /v1/completions and
// /v1/chat/completions parsed into a CompletionRequest, responses and server-sent-event chunks in
// OpenAI's shapes, and OpenAI-style error bodies. No I/O here (see http_server.h).
//
// Request fields: model, prompt (completions: a string, a list of one string, or a list of token
// ids), messages (chat: role + content, content a string or a list of {"type": "text"} parts),
// max_tokens (chat also max_completion_tokens), temperature [0, 2] (default 1), top_p [0, 1]
// (default 1), stop (a string or a list of up to 16), seed, stream, stream_options.include_usage,
// n (1 only); llama.cpp's extensions top_k, min_p and repeat_penalty. Features we do not implement
// (several choices, logprobs, echo, suffix, presence/frequency penalties) are refused with a 400
// rather than ignored. Unknown fields are ignored, as OpenAI does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "runtime/app/server/slot_scheduler.h"
#include "runtime/text/chat_template.h"
#include "runtime/text/sampler.h"

namespace pinfer {

enum class Endpoint { kCompletions, kChatCompletions };

// An error as OpenAI reports it: an HTTP status and {"error": {"message", "type", "param",
// "code"}}.
struct ApiError {
  int http_status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string code;   // empty: null
  std::string param;  // empty: null

  nlohmann::json ToJson() const;
  std::string Body() const;
};

// A 400 invalid_request_error; `code` and `param` empty: null.
ApiError InvalidRequest(std::string message, std::string code = "", std::string param = "");

// Maps a Status from the layers below: InvalidArgument/OutOfRange → 400, NotFound → 404,
// ResourceExhausted/Unavailable/DeadlineExceeded → 503, anything else → 500.
ApiError ApiErrorFromStatus(const absl::Status& status);

struct CompletionRequest {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string model;  // empty when not given
  // /v1/completions: the prompt as text, or as token ids (prompt_is_tokens).
  std::string prompt;
  std::vector<int32_t> prompt_tokens;
  bool prompt_is_tokens = false;
  // /v1/chat/completions.
  std::vector<ChatMessage> messages;
  std::optional<int64_t> max_tokens;
  SamplerParams sampling;  // OpenAI defaults: temperature 1, top_p 1, no top-k or min-p
  bool seed_given = false;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

// InvalidArgument naming the field when the body is not a valid request.
absl::StatusOr<CompletionRequest> ParseCompletionRequest(const nlohmann::json& body,
                                                         Endpoint endpoint);

// What a finished generation produced.
struct CompletionOutcome {
  std::string text;
  FinishReason finish_reason = FinishReason::kStop;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;  // of the prompt, from the prompt cache
};

// Identifies one response: "cmpl-..." or "chatcmpl-...", its creation time (Unix seconds) and the
// model name.
struct ResponseHeader {
  std::string id;
  int64_t created = 0;
  std::string model;
};

// OpenAI's usage object; prompt_tokens counts the cached ones too, and
// prompt_tokens_details.cached_tokens says how many of them came from the prompt cache.
nlohmann::json UsageJson(int64_t prompt_tokens, int64_t completion_tokens,
                         int64_t cached_tokens = 0);
// The whole non-streaming response body.
nlohmann::json CompletionResponse(Endpoint endpoint, const ResponseHeader& header,
                                  const CompletionOutcome& outcome);
// One streamed chunk: a text delta (chat: `role` adds "role": "assistant" to the first), or the
// last one with its finish reason and an empty delta.
nlohmann::json StreamChunk(Endpoint endpoint, const ResponseHeader& header, std::string_view text,
                           std::optional<FinishReason> finish_reason, bool role = false);
// The chunk after the last one when stream_options.include_usage: no choices, the usage.
nlohmann::json StreamUsageChunk(Endpoint endpoint, const ResponseHeader& header,
                                int64_t prompt_tokens, int64_t completion_tokens,
                                int64_t cached_tokens = 0);

// Serialises JSON for the wire; invalid UTF-8 (a model may emit any bytes) becomes U+FFFD.
std::string DumpJson(const nlohmann::json& value);
// "data: <json>\n\n"; and the stream's end, "data: [DONE]\n\n".
std::string SseEvent(const nlohmann::json& value);
inline constexpr char kSseDone[] = "data: [DONE]\n\n";

}  // namespace pinfer
