// The OpenAI request parser (defaults, every field, every refusal naming its field) and the shapes
// of responses, chunks and errors.
#include "runtime/app/server/openai_protocol.h"

#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace pinfer {
namespace {

using nlohmann::json;

absl::StatusOr<CompletionRequest> Parse(const char* text,
                                        Endpoint endpoint = Endpoint::kCompletions) {
  return ParseCompletionRequest(json::parse(text), endpoint);
}

// The request is refused, and the message names `field`.
void ExpectRefused(const char* text, const char* field,
                   Endpoint endpoint = Endpoint::kCompletions) {
  const absl::StatusOr<CompletionRequest> r = Parse(text, endpoint);
  ASSERT_FALSE(r.ok()) << text;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(r.status().message(), field)) << r.status() << " lacks " << field;
}

TEST(OpenAiProtocolTest, CompletionDefaultsAreOpenAis) {
  const CompletionRequest r = *Parse(R"({"prompt": "Hello"})");
  EXPECT_EQ(r.prompt, "Hello");
  EXPECT_FALSE(r.prompt_is_tokens);
  EXPECT_TRUE(r.model.empty());
  EXPECT_FALSE(r.max_tokens.has_value());
  EXPECT_FLOAT_EQ(r.sampling.temperature, 1.0f);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 1.0f);
  EXPECT_EQ(r.sampling.top_k, 0);
  EXPECT_FLOAT_EQ(r.sampling.min_p, 0.0f);
  EXPECT_FLOAT_EQ(r.sampling.repeat_penalty, 1.0f);
  EXPECT_FALSE(r.seed_given);
  EXPECT_TRUE(r.stop.empty());
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.include_usage);
}

TEST(OpenAiProtocolTest, EveryFieldIsRead) {
  const CompletionRequest r = *Parse(
      R"({"model": "m", "prompt": ["One"], "max_tokens": 7, "temperature": 0.5, "top_p": 0.9,
          "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.1, "seed": -3, "stop": ["a", "b"],
          "stream": true, "stream_options": {"include_usage": true}, "n": 1, "echo": false,
          "logprobs": null, "presence_penalty": 0, "frequency_penalty": 0.0, "user": "x"})");
  EXPECT_EQ(r.model, "m");
  EXPECT_EQ(r.prompt, "One");
  EXPECT_EQ(r.max_tokens, 7);
  EXPECT_FLOAT_EQ(r.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 0.9f);
  EXPECT_EQ(r.sampling.top_k, 40);
  EXPECT_FLOAT_EQ(r.sampling.min_p, 0.05f);
  EXPECT_FLOAT_EQ(r.sampling.repeat_penalty, 1.1f);
  EXPECT_TRUE(r.seed_given);
  EXPECT_EQ(r.sampling.seed, static_cast<uint64_t>(int64_t{-3}));
  EXPECT_EQ(r.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
}

TEST(OpenAiProtocolTest, PromptsAsTokenIdsAndStopAsAString) {
  const CompletionRequest r = *Parse(R"({"prompt": [1, 403, 407], "stop": "\n"})");
  EXPECT_TRUE(r.prompt_is_tokens);
  EXPECT_EQ(r.prompt_tokens, (std::vector<int32_t>{1, 403, 407}));
  EXPECT_EQ(r.stop, std::vector<std::string>{"\n"});
}

TEST(OpenAiProtocolTest, ChatMessagesWithStringOrTextParts) {
  const CompletionRequest r = *Parse(
      R"({"messages": [{"role": "system", "content": "Be brief."},
                       {"role": "user", "content": [{"type": "text", "text": "Hi "},
                                                    {"type": "text", "text": "there"}]},
                       {"role": "assistant", "content": null}],
          "max_completion_tokens": 5})",
      Endpoint::kChatCompletions);
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[0].content, "Be brief.");
  EXPECT_EQ(r.messages[1].content, "Hi there");
  EXPECT_EQ(r.messages[2].content, "");
  EXPECT_EQ(r.max_tokens, 5);
}

TEST(OpenAiProtocolTest, RefusalsNameTheirField) {
  ExpectRefused(R"([1, 2])", "object");
  ExpectRefused(R"({})", "'prompt' is required");
  ExpectRefused(R"({"prompt": 5})", "'prompt'");
  ExpectRefused(R"({"prompt": ["a", "b"]})", "several prompts");
  ExpectRefused(R"({"prompt": [1, -2]})", "'prompt'");
  ExpectRefused(R"({"prompt": "x", "model": 3})", "'model'");
  ExpectRefused(R"({"prompt": "x", "max_tokens": 0})", "'max_tokens'");
  ExpectRefused(R"({"prompt": "x", "max_tokens": 1.5})", "'max_tokens' must be an integer");
  ExpectRefused(R"({"prompt": "x", "temperature": 3})", "'temperature' must be between 0 and 2");
  ExpectRefused(R"({"prompt": "x", "temperature": "hot"})", "'temperature' must be a number");
  ExpectRefused(R"({"prompt": "x", "top_p": 1.5})", "'top_p'");
  ExpectRefused(R"({"prompt": "x", "top_k": -1})", "'top_k'");
  ExpectRefused(R"({"prompt": "x", "seed": "7"})", "'seed'");
  ExpectRefused(R"({"prompt": "x", "stop": 5})", "'stop'");
  ExpectRefused(R"({"prompt": "x", "stop": [""]})", "empty");
  ExpectRefused(R"({"prompt": "x", "stop": ["1","2","3","4","5","6","7","8","9","10","11","12",
                   "13","14","15","16","17"]})",
                "at most 16");
  ExpectRefused(R"({"prompt": "x", "stream": "yes"})", "'stream'");
  ExpectRefused(R"({"prompt": "x", "stream_options": {"include_usage": 1}})", "include_usage");
  ExpectRefused(R"({"prompt": "x", "n": 2})", "'n' is not supported");
  ExpectRefused(R"({"prompt": "x", "best_of": 3})", "'best_of'");
  ExpectRefused(R"({"prompt": "x", "echo": true})", "'echo'");
  ExpectRefused(R"({"prompt": "x", "logprobs": 5})", "'logprobs'");
  ExpectRefused(R"({"prompt": "x", "presence_penalty": 0.5})", "'presence_penalty'");
  ExpectRefused(R"({"messages": []})", "'messages'", Endpoint::kChatCompletions);
  ExpectRefused(R"({"messages": [{"content": "x"}]})", "messages[0]", Endpoint::kChatCompletions);
  ExpectRefused(R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})",
                "messages[0].content", Endpoint::kChatCompletions);
  ExpectRefused(R"({"messages": [{"role": "user", "content": "x"}], "logprobs": true})",
                "'logprobs'", Endpoint::kChatCompletions);
}

TEST(OpenAiProtocolTest, ResponsesHaveOpenAisShape) {
  const ResponseHeader header{"cmpl-1", 1700000000, "stories"};
  CompletionOutcome outcome{"text", FinishReason::kLength, 5, 3};
  const json completion = CompletionResponse(Endpoint::kCompletions, header, outcome);
  EXPECT_EQ(completion["object"], "text_completion");
  EXPECT_EQ(completion["id"], "cmpl-1");
  EXPECT_EQ(completion["created"], 1700000000);
  EXPECT_EQ(completion["model"], "stories");
  EXPECT_EQ(completion["choices"][0]["text"], "text");
  EXPECT_EQ(completion["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(completion["usage"], json::parse(
                                     R"({"prompt_tokens": 5, "completion_tokens": 3,
                                         "total_tokens": 8,
                                         "prompt_tokens_details": {"cached_tokens": 0}})"));
  outcome.finish_reason = FinishReason::kStop;
  const json chat = CompletionResponse(Endpoint::kChatCompletions, header, outcome);
  EXPECT_EQ(chat["object"], "chat.completion");
  EXPECT_EQ(chat["choices"][0]["message"], json::parse(R"({"role": "assistant",
                                                            "content": "text"})"));
  EXPECT_EQ(chat["choices"][0]["finish_reason"], "stop");

  const json first = StreamChunk(Endpoint::kChatCompletions, header, "", std::nullopt, true);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"], json::parse(R"({"role": "assistant", "content": ""})"));
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  const json last = StreamChunk(Endpoint::kChatCompletions, header, "", FinishReason::kStop);
  EXPECT_EQ(last["choices"][0]["delta"], json::object());
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
  const json text = StreamChunk(Endpoint::kCompletions, header, "ab", std::nullopt);
  EXPECT_EQ(text["object"], "text_completion");
  EXPECT_EQ(text["choices"][0]["text"], "ab");
  const json usage = StreamUsageChunk(Endpoint::kCompletions, header, 2, 4);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["total_tokens"], 6);
}

TEST(OpenAiProtocolTest, ErrorsAndServerSentEvents) {
  ApiError error;
  error.message = "bad";
  error.code = "invalid_json";
  EXPECT_EQ(error.ToJson(), json::parse(R"({"error": {"message": "bad",
      "type": "invalid_request_error", "param": null, "code": "invalid_json"}})"));
  EXPECT_EQ(ApiErrorFromStatus(absl::ResourceExhaustedError("busy")).http_status, 503);
  EXPECT_EQ(ApiErrorFromStatus(absl::InvalidArgumentError("x")).http_status, 400);
  EXPECT_EQ(ApiErrorFromStatus(absl::InternalError("x")).http_status, 500);
  EXPECT_EQ(SseEvent(json{{"a", 1}}), "data: {\"a\":1}\n\n");
  // Bytes a model may emit that are not UTF-8 do not break the encoder.
  EXPECT_EQ(DumpJson(json("a\xFF")), "\"a\xEF\xBF\xBD\"");
}

}  // namespace
}  // namespace pinfer
