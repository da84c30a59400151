// Chat templates: recognising the formats in real Jinja templates, rendering them exactly as
// the models' own templates do, and encoding them with a real vocabulary (stories260K's).
#include "runtime/text/chat_template.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "format/strings.h"
#include "gtest/gtest.h"
#include "runtime/model/model.h"
#include "tests/runtime/test_models.h"

namespace pinfer {
namespace {

// meta-llama/Llama-2-7b-chat-hf tokenizer_config.json's chat_template.
constexpr char kLlama2Jinja[] =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set "
    "system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set "
    "system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] "
    "== 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message "
    "!= false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + "
    "message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if "
    "message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% "
    "elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif "
    "%}{% endfor %}";

// The ChatML template of Qwen/OpenHermes-style models.
constexpr char kChatMlJinja[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] "
    "+ '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|im_start|>assistant\\n' "
    "}}{% endif %}";

// meta-llama/Meta-Llama-3-8B-Instruct tokenizer_config.json's chat_template.
constexpr char kLlama3Jinja[] =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | "
    "trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% "
    "endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

// google/gemma-2b-it's: none of the formats.
constexpr char kGemmaJinja[] =
    "{{ bos_token }}{% for message in messages %}{{ '<start_of_turn>' + message['role'] + '\\n' "
    "+ message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}";

std::vector<ChatMessage> Conversation() {
  return {{"system", "You are terse."},
          {"user", "  Hello!  "},
          {"assistant", "Hi. "},
          {"user", "Tell me a story."}};
}

TEST(ChatTemplateTest, RecognisesTheFormatOfRealTemplates) {
  EXPECT_EQ(DetectChatFormat(kLlama2Jinja), ChatFormat::kLlama2);
  EXPECT_EQ(DetectChatFormat(kChatMlJinja), ChatFormat::kChatMl);
  EXPECT_EQ(DetectChatFormat(kLlama3Jinja), ChatFormat::kLlama3);
  EXPECT_EQ(DetectChatFormat(kGemmaJinja), std::nullopt);
  // llama.cpp's order: a template with ChatML's markers is ChatML whatever else it holds.
  EXPECT_EQ(DetectChatFormat(std::string(kLlama3Jinja) + "<|im_start|>"), ChatFormat::kChatMl);
  EXPECT_EQ(DetectChatFormat("<|start_header_id|> alone"), std::nullopt);
  EXPECT_EQ(DetectChatFormat(""), std::nullopt);
}

TEST(ChatTemplateTest, ParsesFormatNames) {
  EXPECT_EQ(*ParseChatFormat("llama2"), ChatFormat::kLlama2);
  EXPECT_EQ(*ParseChatFormat("Llama-2"), ChatFormat::kLlama2);
  EXPECT_EQ(*ParseChatFormat("ChatML"), ChatFormat::kChatMl);
  EXPECT_EQ(*ParseChatFormat("llama3"), ChatFormat::kLlama3);
  EXPECT_EQ(*ParseChatFormat("Llama-3"), ChatFormat::kLlama3);
  const absl::StatusOr<ChatFormat> bad = ParseChatFormat("zephyr");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "'zephyr'")) << bad.status();
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "llama2, chatml, llama3")) << bad.status();
  EXPECT_EQ(ChatFormatName(ChatFormat::kLlama2), "llama2");
  EXPECT_EQ(ChatFormatName(ChatFormat::kChatMl), "chatml");
  EXPECT_EQ(ChatFormatName(ChatFormat::kLlama3), "llama3");
}

TEST(ChatTemplateTest, ChoosesFlagThenModelThenDefault) {
  Vocabulary v;
  v.chat_template = kLlama2Jinja;
  EXPECT_EQ(ChatTemplate::ForVocabulary(v)->format(), ChatFormat::kLlama2);
  EXPECT_EQ(ChatTemplate::ForVocabulary(v)->origin(), ChatTemplate::Origin::kModel);
  EXPECT_EQ(ChatTemplate::ForVocabulary(v, "chatml")->format(), ChatFormat::kChatMl);
  EXPECT_EQ(ChatTemplate::ForVocabulary(v, "chatml")->origin(), ChatTemplate::Origin::kFlag);
  EXPECT_FALSE(ChatTemplate::ForVocabulary(v, "jinja").ok());

  v.chat_template = kLlama3Jinja;
  EXPECT_EQ(ChatTemplate::ForVocabulary(v)->format(), ChatFormat::kLlama3);
  EXPECT_EQ(ChatTemplate::ForVocabulary(v)->Describe(), "llama3 (the model's template)");
  v.chat_template = kGemmaJinja;
  const ChatTemplate unrecognised = *ChatTemplate::ForVocabulary(v);
  EXPECT_EQ(unrecognised.format(), kDefaultChatFormat);
  EXPECT_EQ(unrecognised.origin(), ChatTemplate::Origin::kDefaultUnrecognised);
  v.chat_template.clear();
  const ChatTemplate none = *ChatTemplate::ForVocabulary(v);
  EXPECT_EQ(none.format(), ChatFormat::kChatMl);
  EXPECT_EQ(none.Describe(), "chatml (default: the model records no chat template)");
}

TEST(ChatTemplateTest, Llama2RendersAsMetasTemplate) {
  const ChatTemplate llama2(ChatFormat::kLlama2);
  // What kLlama2Jinja renders for Conversation() (system folded into the first user turn,
  // contents stripped).
  EXPECT_EQ(*llama2.Apply(Conversation(), "<s>", "</s>"),
            "<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHello! [/INST] Hi. </s>"
            "<s>[INST] Tell me a story. [/INST]");
  const std::vector<ChatMessage> no_system = {{"user", "Hi"}};
  EXPECT_EQ(*llama2.Apply(no_system, "<s>", "</s>"), "<s>[INST] Hi [/INST]");
}

TEST(ChatTemplateTest, Llama2RefusesConversationsItsTemplateRefuses) {
  const ChatTemplate llama2(ChatFormat::kLlama2);
  auto error = [&](std::vector<ChatMessage> messages) {
    const absl::StatusOr<std::string> text = llama2.Apply(messages, "<s>", "</s>");
    EXPECT_FALSE(text.ok());
    return text.ok() ? std::string() : std::string(text.status().message());
  };
  EXPECT_TRUE(absl::StrContains(error({}), "no messages"));
  EXPECT_TRUE(absl::StrContains(error({{"system", "s"}}), "needs a message from the user"));
  EXPECT_TRUE(absl::StrContains(error({{"user", "a"}, {"user", "b"}}), "alternating"));
  EXPECT_TRUE(absl::StrContains(error({{"assistant", "a"}}), "alternating"));
  EXPECT_TRUE(absl::StrContains(error({{"user", "a"}, {"assistant", "b"}}), "last message"));
  EXPECT_TRUE(absl::StrContains(error({{"user", "a"}, {"tool", "b"}}), "role 'tool'"));
}

TEST(ChatTemplateTest, ChatMlRendersEveryRole) {
  const ChatTemplate chatml(ChatFormat::kChatMl);
  EXPECT_EQ(*chatml.Apply(Conversation(), "<s>", "</s>"),
            "<|im_start|>system\nYou are terse.<|im_end|>\n"
            "<|im_start|>user\n  Hello!  <|im_end|>\n"
            "<|im_start|>assistant\nHi. <|im_end|>\n"
            "<|im_start|>user\nTell me a story.<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(chatml.StopSequences(), std::vector<std::string>{"<|im_end|>"});
  EXPECT_TRUE(ChatTemplate(ChatFormat::kLlama2).StopSequences().empty());
}

// llama.cpp's llama_chat_apply_template for "llama3" (what kLlama3Jinja renders without its
// bos_token, which the tokenizer adds): every role, contents trimmed, the assistant's header last.
TEST(ChatTemplateTest, Llama3RendersAsLlamaCpp) {
  const ChatTemplate llama3(ChatFormat::kLlama3);
  EXPECT_EQ(*llama3.Apply(Conversation(), "<|begin_of_text|>", "<|end_of_text|>"),
            "<|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHi.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nTell me a story.<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  const std::vector<ChatMessage> single = {{"user", "How are you"}};
  EXPECT_EQ(*llama3.Apply(single, "", ""),
            "<|start_header_id|>user<|end_header_id|>\n\nHow are you<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  // Any role, in any order (the template checks none); whitespace inside is kept.
  const std::vector<ChatMessage> tool = {{"ipython", "\t{\"a\":  1}\n"}, {"user", "a\n\nb"}};
  EXPECT_EQ(*llama3.Apply(tool, "", ""),
            "<|start_header_id|>ipython<|end_header_id|>\n\n{\"a\":  1}<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\na\n\nb<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_FALSE(llama3.Apply({}, "", "").ok());
  EXPECT_EQ(llama3.StopSequences(), std::vector<std::string>{"<|eot_id|>"});
}

class ChatTemplateEncodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = *Model::Load(test::ConvertedModel(test::BundledModel::kStories260K, DType::kF32));
    tokenizer_ = std::make_unique<Tokenizer>(*Tokenizer::Create(*model_->vocabulary()));
  }
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

TEST_F(ChatTemplateEncodeTest, Llama2WritesBosAndEosAsTheirTokens) {
  const Tokenizer& t = *tokenizer_;
  const std::vector<ChatMessage> messages = {{"user", "Hi"}, {"assistant", "Yo"}, {"user", "Go"}};
  const std::vector<int32_t> tokens = *ChatTemplate(ChatFormat::kLlama2).Encode(messages, t);
  // One BOS per user turn, one EOS after the assistant's, no other control token; the text between
  // them is the plain text's encoding (llama.cpp's rule: a leading space after a special token).
  const std::vector<int32_t> first = t.Encode("[INST] Hi [/INST] Yo ", /*add_special=*/false);
  const std::vector<int32_t> second = t.Encode("[INST] Go [/INST]", /*add_special=*/false);
  std::vector<int32_t> expected = {t.bos()};
  expected.insert(expected.end(), first.begin(), first.end());
  expected.push_back(t.eos());
  expected.push_back(t.bos());
  expected.insert(expected.end(), second.begin(), second.end());
  EXPECT_EQ(tokens, expected);
  EXPECT_EQ(t.Decode(tokens, false, /*unparse_special=*/true),
            "<s> [INST] Hi [/INST] Yo </s><s> [INST] Go [/INST]");
}

TEST_F(ChatTemplateEncodeTest, ChatMlStartsWithTheVocabularysBos) {
  const Tokenizer& t = *tokenizer_;
  const std::vector<ChatMessage> messages = {{"user", "Hi"}};
  const std::vector<int32_t> tokens = *ChatTemplate(ChatFormat::kChatMl).Encode(messages, t);
  ASSERT_FALSE(tokens.empty());
  EXPECT_EQ(tokens.front(), t.bos());
  EXPECT_EQ(std::count(tokens.begin(), tokens.end(), t.bos()), 1);
  EXPECT_EQ(t.Decode(tokens, /*remove_special=*/true),
            " <|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

}  // namespace
}  // namespace pinfer
