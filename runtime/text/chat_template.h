// Chat prompts in the formats most Llama-family chat models are trained on. A model records its
// format as a Jinja template (GGUF tokenizer.chat_template, HF tokenizer_config.json), kept in
// Vocabulary::chat_template; instead of running Jinja we recognise which of the two formats the
// template writes, by its markers, and render that format ourselves:
//
//   llama2   <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s><s>[INST]
//   {user}
//            [/INST]
//            (Meta's Llama-2-chat: an optional system message first, then user and assistant
//            messages alternating, starting and ending with the user; contents are stripped of
//            surrounding whitespace. "<s>"/"</s>" are the vocabulary's BOS/EOS pieces, so the text
//            is encoded with special pieces recognised and no BOS added.)
//   chatml   <|im_start|>{role}\n{content}<|im_end|>\n ... <|im_start|>assistant\n
//            (any roles, in any order; BOS is added as the vocabulary says; the reply ends with
//            "<|im_end|>", a stop sequence.)
//   llama3   <|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|> ...
//            <|start_header_id|>assistant<|end_header_id|>\n\n
//            (Meta's Llama 3 instruct models: any roles, contents stripped of surrounding
//            whitespace; BOS (<|begin_of_text|>) is added as the vocabulary says; the reply ends
//            with "<|eot_id|>", a stop sequence.)
// Each is exactly the text llama.cpp's llama_chat_apply_template writes for its "llama2"
// (the system variant), "chatml" and "llama3" templates, and recognised by the same markers.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/model/vocabulary.h"
#include "runtime/text/tokenizer.h"

namespace pinfer {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", ...
  std::string content;
};

enum class ChatFormat { kLlama2, kChatMl, kLlama3 };

// The format used when the model records no template, or one we do not recognise: ChatML, as
// llama.cpp does.
inline constexpr ChatFormat kDefaultChatFormat = ChatFormat::kChatMl;

// "llama2", "chatml", "llama3".
std::string_view ChatFormatName(ChatFormat format);
// Accepts the names above (case-insensitive), "llama-2" and "llama-3"; the error lists the
// accepted names.
absl::StatusOr<ChatFormat> ParseChatFormat(std::string_view name);
// Which format a Jinja chat template writes, tested in llama.cpp's order: ChatML when it contains
// "<|im_start|>", llama2 when it contains "[INST]", llama3 when it contains "<|start_header_id|>"
// and "<|end_header_id|>"; nullopt for anything else (an empty template included).
std::optional<ChatFormat> DetectChatFormat(std::string_view jinja);

class ChatTemplate {
 public:
  // Why this format was chosen, for logs.
  enum class Origin { kFlag, kModel, kDefaultNoTemplate, kDefaultUnrecognised };

  explicit ChatTemplate(ChatFormat format, Origin origin = Origin::kFlag)
      : format_(format), origin_(origin) {}
  // `override_name` (a flag's value) wins when not empty; else the format of the vocabulary's
  // template, else kDefaultChatFormat. Fails only on a bad override name.
  static absl::StatusOr<ChatTemplate> ForVocabulary(const Vocabulary& vocabulary,
                                                    std::string_view override_name = "");

  ChatFormat format() const { return format_; }
  Origin origin() const { return origin_; }
  // "chatml (the model's template)", "chatml (default: the model records no chat template)"...
  std::string Describe() const;

  // The prompt text for `messages`, ending where the assistant's reply begins. `bos` and `eos` are
  // the vocabulary's BOS and EOS pieces (llama2 writes them). Fails with InvalidArgument when the
  // conversation does not fit the format (no messages; for llama2: a role other than system, user
  // or assistant, roles that do not alternate, a last message not from the user).
  absl::StatusOr<std::string> Apply(std::span<const ChatMessage> messages, std::string_view bos,
                                    std::string_view eos) const;

  // Apply() then the token ids, encoded as the format requires (see the top of the file).
  absl::StatusOr<std::vector<int32_t>> Encode(std::span<const ChatMessage> messages,
                                              const Tokenizer& tokenizer) const;

  // Text that ends the assistant's reply besides EOS ("<|im_end|>" for ChatML, "<|eot_id|>" for
  // llama3). When the
  // vocabulary has it as a single piece, that token ends the generation too.
  std::vector<std::string> StopSequences() const;

 private:
  ChatFormat format_;
  Origin origin_;
};

}  // namespace pinfer
