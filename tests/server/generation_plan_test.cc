// PlanGeneration: prompts (text, token ids, chat), stop sequences and end tokens, and every limit
// on max_tokens, over stories260K's vocabulary.
#include "runtime/app/server/generation_plan.h"

#include <string>
#include <variant>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/server/server_harness.h"

namespace pinfer {
namespace {

class GenerationPlanTest : public ::testing::Test {
 protected:
  const Tokenizer& tokenizer() { return *test::StoriesRuntime().tokenizer; }

  std::variant<GenerationRequest, ApiError> Plan(const CompletionRequest& request,
                                                 ChatFormat format = ChatFormat::kChatMl) {
    return PlanGeneration(request, tokenizer(), ChatTemplate(format), limits_);
  }
  static CompletionRequest Completion(const std::string& prompt) {
    CompletionRequest r;
    r.prompt = prompt;
    return r;
  }
  // The error of a refused plan (or a failure when it was accepted).
  static ApiError Refusal(const std::variant<GenerationRequest, ApiError>& plan) {
    const ApiError* error = std::get_if<ApiError>(&plan);
    EXPECT_NE(error, nullptr);
    return error ? *error : ApiError{};
  }

  GenerationLimits limits_{"stories", 64, 40};
};

TEST_F(GenerationPlanTest, ACompletionPromptIsEncodedAsPiRunDoes) {
  CompletionRequest r = Completion("Once upon a time");
  r.stop = {"\n"};
  r.sampling.temperature = 0.5f;
  const GenerationRequest plan = std::get<GenerationRequest>(Plan(r));
  EXPECT_EQ(plan.prompt, tokenizer().Encode("Once upon a time", /*add_special=*/true));
  EXPECT_EQ(plan.prompt.front(), tokenizer().bos());
  EXPECT_EQ(plan.stop, std::vector<std::string>{"\n"});
  EXPECT_TRUE(plan.end_tokens.empty());
  EXPECT_FLOAT_EQ(plan.sampling.temperature, 0.5f);
  // No max_tokens: --max-tokens (40), as the 64-token context leaves room for it.
  EXPECT_EQ(plan.max_tokens, 40);
  // A longer prompt: what the context leaves.
  r.prompt = "Once upon a time there was a little girl named Lily who liked to play outside.";
  const GenerationRequest longer = std::get<GenerationRequest>(Plan(r));
  EXPECT_EQ(longer.max_tokens, 64 - static_cast<int64_t>(longer.prompt.size()));
}

TEST_F(GenerationPlanTest, TokenIdsAndChatMessages) {
  CompletionRequest ids;
  ids.prompt_is_tokens = true;
  ids.prompt_tokens = {1, 403, 407};
  EXPECT_EQ(std::get<GenerationRequest>(Plan(ids)).prompt, ids.prompt_tokens);
  ids.prompt_tokens = {1, 512};
  const ApiError outside = Refusal(Plan(ids));
  EXPECT_EQ(outside.http_status, 400);
  EXPECT_TRUE(absl::StrContains(outside.message, "token id 512 is outside the vocabulary of 512"));

  CompletionRequest chat;
  chat.endpoint = Endpoint::kChatCompletions;
  chat.messages = {{"user", "Hi"}};
  chat.stop = {"The end"};
  const GenerationRequest plan = std::get<GenerationRequest>(Plan(chat));
  EXPECT_EQ(plan.prompt, *ChatTemplate(ChatFormat::kChatMl).Encode(chat.messages, tokenizer()));
  EXPECT_EQ(plan.stop, (std::vector<std::string>{"The end", "<|im_end|>"}));
  EXPECT_TRUE(plan.end_tokens.empty());  // stories260K has no "<|im_end|>" piece

  chat.messages = {{"assistant", "Hi"}};
  const ApiError refused = Refusal(Plan(chat, ChatFormat::kLlama2));
  EXPECT_EQ(refused.http_status, 400);
  EXPECT_EQ(refused.param, "messages");
}

TEST_F(GenerationPlanTest, RefusalsAndTheLimitsOfMaxTokens) {
  CompletionRequest r = Completion("Once upon a time");  // 5 tokens
  r.model = "gpt-4";
  ApiError e = Refusal(Plan(r));
  EXPECT_EQ(e.http_status, 404);
  EXPECT_EQ(e.code, "model_not_found");
  r.model = "stories";

  r.max_tokens = 65;
  e = Refusal(Plan(r));
  EXPECT_EQ(e.http_status, 400);
  EXPECT_EQ(e.code, "context_length_exceeded");
  EXPECT_TRUE(absl::StrContains(e.message, "beyond the context of 64")) << e.message;

  r.max_tokens = 41;
  e = Refusal(Plan(r));
  EXPECT_TRUE(absl::StrContains(e.message, "--max-tokens 40")) << e.message;
  EXPECT_EQ(e.param, "max_tokens");

  limits_.max_tokens = 1000;
  r.max_tokens = 60;
  e = Refusal(Plan(r));
  EXPECT_EQ(e.code, "context_length_exceeded");
  EXPECT_TRUE(absl::StrContains(e.message, "the prompt has 5 and max_tokens asks for 60"))
      << e.message;
  r.max_tokens = 59;
  EXPECT_EQ(std::get<GenerationRequest>(Plan(r)).max_tokens, 59);

  r.max_tokens.reset();
  limits_.context_length = 5;
  e = Refusal(Plan(r));
  EXPECT_EQ(e.code, "context_length_exceeded");
  EXPECT_EQ(e.param, "prompt");
  EXPECT_TRUE(absl::StrContains(e.message, "leaves no room")) << e.message;
}

}  // namespace
}  // namespace pinfer
