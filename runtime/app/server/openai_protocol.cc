#include "runtime/app/server/openai_protocol.h"

#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "format/strings.h"

namespace pinfer {
namespace {

using nlohmann::json;

constexpr size_t kMaxStopSequences = 16;

absl::Status FieldError(std::string_view field, std::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("'", Sv(field), "' ", Sv(problem)));
}

// A field that is absent or null.
bool Absent(const json& body, const char* field) {
  auto it = body.find(field);
  return it == body.end() || it->is_null();
}

// A number field within [lo, hi]; nullopt when absent.
absl::StatusOr<std::optional<double>> NumberField(const json& body, const char* field, double lo,
                                                  double hi) {
  if (Absent(body, field)) return std::nullopt;
  const json& value = body.at(field);
  if (!value.is_number()) return FieldError(field, "must be a number");
  const double v = value.get<double>();
  if (!std::isfinite(v) || v < lo || v > hi) {
    return FieldError(field, absl::StrCat("must be between ", lo, " and ", hi, ", got ", v));
  }
  return v;
}

// An integer field within [lo, hi]; nullopt when absent.
absl::StatusOr<std::optional<int64_t>> IntegerField(const json& body, const char* field, int64_t lo,
                                                    int64_t hi) {
  if (Absent(body, field)) return std::nullopt;
  const json& value = body.at(field);
  if (value.is_number_unsigned()) {
    const uint64_t v = value.get<uint64_t>();
    if (v > static_cast<uint64_t>(hi)) {
      return FieldError(field, absl::StrCat("must be at most ", hi, ", got ", v));
    }
    if (static_cast<int64_t>(v) < lo) {
      return FieldError(field, absl::StrCat("must be at least ", lo, ", got ", v));
    }
    return static_cast<int64_t>(v);
  }
  if (!value.is_number_integer()) return FieldError(field, "must be an integer");
  const int64_t v = value.get<int64_t>();
  if (v < lo || v > hi) {
    return FieldError(field, absl::StrCat("must be between ", lo, " and ", hi, ", got ", v));
  }
  return v;
}

absl::StatusOr<bool> BoolField(const json& body, const char* field, bool fallback) {
  if (Absent(body, field)) return fallback;
  const json& value = body.at(field);
  if (!value.is_boolean()) return FieldError(field, "must be true or false");
  return value.get<bool>();
}

// Refuses a feature we do not implement unless the field holds its neutral value.
absl::Status Unsupported(const json& body, const char* field, const json& neutral,
                         std::string_view what) {
  if (Absent(body, field)) return absl::OkStatus();
  const json& value = body.at(field);
  if (value == neutral) return absl::OkStatus();
  return FieldError(field, absl::StrCat("is not supported by pi-server (", Sv(what), ")"));
}

absl::Status ParsePrompt(const json& body, CompletionRequest& request) {
  if (Absent(body, "prompt")) return FieldError("prompt", "is required");
  const json& prompt = body.at("prompt");
  if (prompt.is_string()) {
    request.prompt = prompt.get<std::string>();
    return absl::OkStatus();
  }
  if (!prompt.is_array() || prompt.empty()) {
    return FieldError("prompt", "must be a string, a list of one string or a list of token ids");
  }
  if (prompt.size() == 1 && prompt[0].is_string()) {
    request.prompt = prompt[0].get<std::string>();
    return absl::OkStatus();
  }
  if (prompt[0].is_string() || prompt[0].is_array()) {
    return FieldError("prompt", "holds several prompts; pi-server answers one prompt per request");
  }
  for (const json& token : prompt) {
    if (!token.is_number_integer() || token.get<int64_t>() < 0 ||
        token.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
      return FieldError("prompt", "must be a string, a list of one string or a list of token ids");
    }
    request.prompt_tokens.push_back(static_cast<int32_t>(token.get<int64_t>()));
  }
  request.prompt_is_tokens = true;
  return absl::OkStatus();
}

absl::StatusOr<std::string> MessageContent(const json& content, size_t index) {
  const std::string field = absl::StrCat("messages[", index, "].content");
  if (content.is_null()) return std::string();
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) return FieldError(field, "must be a string or a list of text parts");
  std::string text;
  for (const json& part : content) {
    const bool text_part = part.is_object() && part.contains("type") && part.at("type") == "text" &&
                           part.contains("text") && part.at("text").is_string();
    if (!text_part) {
      return FieldError(field, "may hold text parts only ({\"type\": \"text\", \"text\": ...})");
    }
    text += part.at("text").get<std::string>();
  }
  return text;
}

absl::Status ParseMessages(const json& body, CompletionRequest& request) {
  if (Absent(body, "messages")) return FieldError("messages", "is required");
  const json& messages = body.at("messages");
  if (!messages.is_array() || messages.empty()) {
    return FieldError("messages", "must be a non-empty list of messages");
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m.at("role").is_string() ||
        m.at("role").get<std::string>().empty()) {
      return FieldError(absl::StrCat("messages[", i, "]"),
                        "must be an object with a \"role\" and a \"content\"");
    }
    absl::StatusOr<std::string> content =
        MessageContent(m.contains("content") ? m.at("content") : json(), i);
    if (!content.ok()) return content.status();
    request.messages.push_back({m.at("role").get<std::string>(), *std::move(content)});
  }
  return absl::OkStatus();
}

absl::Status ParseStop(const json& body, CompletionRequest& request) {
  if (Absent(body, "stop")) return absl::OkStatus();
  const json& stop = body.at("stop");
  if (stop.is_string()) {
    request.stop.push_back(stop.get<std::string>());
  } else if (stop.is_array()) {
    if (stop.size() > kMaxStopSequences) {
      return FieldError("stop", absl::StrCat("may hold at most ", kMaxStopSequences, " sequences"));
    }
    for (const json& s : stop) {
      if (!s.is_string()) return FieldError("stop", "must be a string or a list of strings");
      request.stop.push_back(s.get<std::string>());
    }
  } else {
    return FieldError("stop", "must be a string or a list of strings");
  }
  for (const std::string& s : request.stop) {
    if (s.empty()) return FieldError("stop", "may not hold an empty string");
  }
  return absl::OkStatus();
}

// Assigns *value when the StatusOr holds one.
template <typename T, typename U>
absl::Status Take(absl::StatusOr<std::optional<T>> field, U& out) {
  if (!field.ok()) return field.status();
  if (field->has_value()) out = static_cast<U>(**field);
  return absl::OkStatus();
}

}  // namespace

json ApiError::ToJson() const {
  return json{{"error",
               {{"message", message},
                {"type", type},
                {"param", param.empty() ? json() : json(param)},
                {"code", code.empty() ? json() : json(code)}}}};
}

std::string ApiError::Body() const { return DumpJson(ToJson()); }

ApiError InvalidRequest(std::string message, std::string code, std::string param) {
  ApiError error;
  error.http_status = 400;
  error.message = std::move(message);
  error.code = std::move(code);
  error.param = std::move(param);
  return error;
}

ApiError ApiErrorFromStatus(const absl::Status& status) {
  ApiError error;
  error.message = std::string(status.message());
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      error.http_status = 400;
      break;
    case absl::StatusCode::kNotFound:
      error.http_status = 404;
      break;
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      error.http_status = 503;
      error.type = "server_error";
      error.code = "server_busy";
      break;
    default:
      error.http_status = 500;
      error.type = "server_error";
      break;
  }
  return error;
}

absl::StatusOr<CompletionRequest> ParseCompletionRequest(const json& body, Endpoint endpoint) {
  if (!body.is_object()) return absl::InvalidArgumentError("the request body must be an object");
  CompletionRequest request;
  request.endpoint = endpoint;
  if (!Absent(body, "model")) {
    if (!body.at("model").is_string()) return FieldError("model", "must be a string");
    request.model = body.at("model").get<std::string>();
  }
  if (endpoint == Endpoint::kCompletions) {
    if (absl::Status s = ParsePrompt(body, request); !s.ok()) return s;
  } else {
    if (absl::Status s = ParseMessages(body, request); !s.ok()) return s;
  }

  const int64_t kMaxInt = std::numeric_limits<int32_t>::max();
  int64_t max_tokens = -1;
  if (absl::Status s = Take(IntegerField(body, "max_tokens", 1, kMaxInt), max_tokens); !s.ok()) {
    return s;
  }
  if (endpoint == Endpoint::kChatCompletions) {
    absl::Status s = Take(IntegerField(body, "max_completion_tokens", 1, kMaxInt), max_tokens);
    if (!s.ok()) return s;
  }
  if (max_tokens > 0) request.max_tokens = max_tokens;

  // OpenAI's sampling: temperature and nucleus only; top-k and min-p off unless asked.
  SamplerParams& sampling = request.sampling;
  sampling.temperature = 1.0f;
  sampling.top_p = 1.0f;
  sampling.top_k = 0;
  sampling.min_p = 0.0f;
  sampling.repeat_penalty = 1.0f;
  for (absl::Status s : {
           Take(NumberField(body, "temperature", 0.0, 2.0), sampling.temperature),
           Take(NumberField(body, "top_p", 0.0, 1.0), sampling.top_p),
           Take(IntegerField(body, "top_k", 0, kMaxInt), sampling.top_k),
           Take(NumberField(body, "min_p", 0.0, 1.0), sampling.min_p),
           Take(NumberField(body, "repeat_penalty", 1e-3, 100.0), sampling.repeat_penalty),
       }) {
    if (!s.ok()) return s;
  }
  if (!Absent(body, "seed")) {
    const json& seed = body.at("seed");
    if (!seed.is_number_integer()) return FieldError("seed", "must be an integer");
    sampling.seed = seed.is_number_unsigned() ? seed.get<uint64_t>()
                                              : static_cast<uint64_t>(seed.get<int64_t>());
    request.seed_given = true;
  }
  if (absl::Status s = ParseStop(body, request); !s.ok()) return s;

  absl::StatusOr<bool> stream = BoolField(body, "stream", false);
  if (!stream.ok()) return stream.status();
  request.stream = *stream;
  if (!Absent(body, "stream_options")) {
    const json& options = body.at("stream_options");
    if (!options.is_object()) return FieldError("stream_options", "must be an object");
    absl::StatusOr<bool> usage = BoolField(options, "include_usage", false);
    if (!usage.ok()) return FieldError("stream_options.include_usage", "must be true or false");
    request.include_usage = *usage;
  }

  for (absl::Status s : {
           Unsupported(body, "n", 1, "one choice per request"),
           Unsupported(body, "best_of", 1, "one choice per request"),
           Unsupported(body, "echo", false, "the prompt is not echoed"),
           Unsupported(body, "suffix", "", "no insertion"),
           Unsupported(body, "presence_penalty", 0, "use repeat_penalty"),
           Unsupported(body, "frequency_penalty", 0, "use repeat_penalty"),
           Unsupported(body, "logprobs", endpoint == Endpoint::kCompletions ? json(0) : json(false),
                       "no log probabilities"),
       }) {
    if (!s.ok()) return s;
  }
  return request;
}

json UsageJson(int64_t prompt_tokens, int64_t completion_tokens, int64_t cached_tokens) {
  return json{{"prompt_tokens", prompt_tokens},
              {"completion_tokens", completion_tokens},
              {"total_tokens", prompt_tokens + completion_tokens},
              {"prompt_tokens_details", {{"cached_tokens", cached_tokens}}}};
}

namespace {

json Envelope(Endpoint endpoint, const ResponseHeader& header, bool chunk) {
  const char* object = endpoint == Endpoint::kCompletions
                           ? "text_completion"
                           : (chunk ? "chat.completion.chunk" : "chat.completion");
  return json{{"id", header.id},
              {"object", object},
              {"created", header.created},
              {"model", header.model},
              {"system_fingerprint", "pinfer"}};
}

json FinishJson(std::optional<FinishReason> reason) {
  return reason ? json(FinishReasonName(*reason)) : json();
}

}  // namespace

json CompletionResponse(Endpoint endpoint, const ResponseHeader& header,
                        const CompletionOutcome& outcome) {
  json response = Envelope(endpoint, header, /*chunk=*/false);
  json choice{{"index", 0},
              {"logprobs", nullptr},
              {"finish_reason", FinishReasonName(outcome.finish_reason)}};
  if (endpoint == Endpoint::kCompletions) {
    choice["text"] = outcome.text;
  } else {
    choice["message"] = json{{"role", "assistant"}, {"content", outcome.text}};
  }
  response["choices"] = json::array({choice});
  response["usage"] =
      UsageJson(outcome.prompt_tokens, outcome.completion_tokens, outcome.cached_tokens);
  return response;
}

json StreamChunk(Endpoint endpoint, const ResponseHeader& header, std::string_view text,
                 std::optional<FinishReason> finish_reason, bool role) {
  json chunk = Envelope(endpoint, header, /*chunk=*/true);
  json choice{{"index", 0}, {"logprobs", nullptr}, {"finish_reason", FinishJson(finish_reason)}};
  if (endpoint == Endpoint::kCompletions) {
    choice["text"] = std::string(text);
  } else {
    json delta = json::object();
    if (role) delta["role"] = "assistant";
    if (!text.empty() || role) delta["content"] = std::string(text);
    choice["delta"] = delta;
  }
  chunk["choices"] = json::array({choice});
  return chunk;
}

json StreamUsageChunk(Endpoint endpoint, const ResponseHeader& header, int64_t prompt_tokens,
                      int64_t completion_tokens, int64_t cached_tokens) {
  json chunk = Envelope(endpoint, header, /*chunk=*/true);
  chunk["choices"] = json::array();
  chunk["usage"] = UsageJson(prompt_tokens, completion_tokens, cached_tokens);
  return chunk;
}

std::string DumpJson(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string SseEvent(const json& value) { return absl::StrCat("data: ", DumpJson(value), "\n\n"); }

}  // namespace pinfer
