#include "runtime/text/chat_template.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "format/strings.h"

namespace pinfer {
namespace {

constexpr char kImStart[] = "<|im_start|>";
constexpr char kImEnd[] = "<|im_end|>";
constexpr char kStartHeader[] = "<|start_header_id|>";
constexpr char kEndHeader[] = "<|end_header_id|>";
constexpr char kEotId[] = "<|eot_id|>";

std::string_view Strip(std::string_view text) {
  return StdSv(absl::StripAsciiWhitespace(Sv(text)));
}

absl::StatusOr<std::string> ApplyLlama2(std::span<const ChatMessage> messages, std::string_view bos,
                                        std::string_view eos) {
  std::string_view system;
  bool has_system = false;
  if (!messages.empty() && messages.front().role == "system") {
    system = messages.front().content;
    has_system = true;
    messages = messages.subspan(1);
  }
  if (messages.empty()) {
    return absl::InvalidArgumentError("the llama2 chat format needs a message from the user");
  }
  std::string text;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    const bool user_turn = i % 2 == 0;
    if (m.role != "user" && m.role != "assistant") {
      return absl::InvalidArgumentError(absl::StrCat(
          "the llama2 chat format accepts the roles system (first message only), user and "
          "assistant; message ",
          i + (has_system ? 1 : 0), " has the role '", m.role, "'"));
    }
    if ((m.role == "user") != user_turn) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the llama2 chat format needs user and assistant messages alternating, starting with "
          "the user; message ",
          i + (has_system ? 1 : 0), " is from the ", m.role));
    }
    if (user_turn) {
      std::string content(Strip(m.content));
      if (i == 0 && has_system) {
        content = absl::StrCat("<<SYS>>\n", Sv(system), "\n<</SYS>>\n\n", content);
      }
      absl::StrAppend(&text, Sv(bos), "[INST] ", content, " [/INST]");
    } else {
      absl::StrAppend(&text, " ", Sv(Strip(m.content)), " ", Sv(eos));
    }
  }
  if (messages.back().role != "user") {
    return absl::InvalidArgumentError(
        "the llama2 chat format needs the last message to be from the user");
  }
  return text;
}

std::string ApplyChatMl(std::span<const ChatMessage> messages) {
  std::string text;
  for (const ChatMessage& m : messages) {
    absl::StrAppend(&text, kImStart, m.role, "\n", m.content, kImEnd, "\n");
  }
  absl::StrAppend(&text, kImStart, "assistant\n");
  return text;
}

// llama.cpp strips the contents with C isspace, which is what absl's ASCII whitespace is.
std::string ApplyLlama3(std::span<const ChatMessage> messages) {
  std::string text;
  for (const ChatMessage& m : messages) {
    absl::StrAppend(&text, kStartHeader, m.role, kEndHeader, "\n\n", Sv(Strip(m.content)), kEotId);
  }
  absl::StrAppend(&text, kStartHeader, "assistant", kEndHeader, "\n\n");
  return text;
}

}  // namespace

std::string_view ChatFormatName(ChatFormat format) {
  switch (format) {
    case ChatFormat::kLlama2:
      return "llama2";
    case ChatFormat::kChatMl:
      return "chatml";
    case ChatFormat::kLlama3:
      return "llama3";
  }
  return "unknown";
}

absl::StatusOr<ChatFormat> ParseChatFormat(std::string_view name) {
  const std::string lower = absl::AsciiStrToLower(Sv(name));
  if (lower == "llama2" || lower == "llama-2") return ChatFormat::kLlama2;
  if (lower == "chatml") return ChatFormat::kChatMl;
  if (lower == "llama3" || lower == "llama-3") return ChatFormat::kLlama3;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown chat template '", Sv(name), "' (known: llama2, chatml, llama3)"));
}

std::optional<ChatFormat> DetectChatFormat(std::string_view jinja) {
  if (absl::StrContains(Sv(jinja), kImStart)) return ChatFormat::kChatMl;
  if (absl::StrContains(Sv(jinja), "[INST]")) return ChatFormat::kLlama2;
  if (absl::StrContains(Sv(jinja), kStartHeader) && absl::StrContains(Sv(jinja), kEndHeader)) {
    return ChatFormat::kLlama3;
  }
  return std::nullopt;
}

absl::StatusOr<ChatTemplate> ChatTemplate::ForVocabulary(const Vocabulary& vocabulary,
                                                         std::string_view override_name) {
  if (!override_name.empty()) {
    absl::StatusOr<ChatFormat> format = ParseChatFormat(override_name);
    if (!format.ok()) return format.status();
    return ChatTemplate(*format, Origin::kFlag);
  }
  if (vocabulary.chat_template.empty()) {
    return ChatTemplate(kDefaultChatFormat, Origin::kDefaultNoTemplate);
  }
  if (std::optional<ChatFormat> format = DetectChatFormat(vocabulary.chat_template)) {
    return ChatTemplate(*format, Origin::kModel);
  }
  return ChatTemplate(kDefaultChatFormat, Origin::kDefaultUnrecognised);
}

std::string ChatTemplate::Describe() const {
  const char* why = "";
  switch (origin_) {
    case Origin::kFlag:
      why = "chosen by flag";
      break;
    case Origin::kModel:
      why = "the model's template";
      break;
    case Origin::kDefaultNoTemplate:
      why = "default: the model records no chat template";
      break;
    case Origin::kDefaultUnrecognised:
      why = "default: the model's chat template is not llama2, chatml or llama3";
      break;
  }
  return absl::StrCat(Sv(ChatFormatName(format_)), " (", why, ")");
}

absl::StatusOr<std::string> ChatTemplate::Apply(std::span<const ChatMessage> messages,
                                                std::string_view bos, std::string_view eos) const {
  if (messages.empty()) return absl::InvalidArgumentError("the conversation has no messages");
  switch (format_) {
    case ChatFormat::kLlama2:
      return ApplyLlama2(messages, bos, eos);
    case ChatFormat::kChatMl:
      return ApplyChatMl(messages);
    case ChatFormat::kLlama3:
      return ApplyLlama3(messages);
  }
  return absl::InternalError("unknown chat format");
}

absl::StatusOr<std::vector<int32_t>> ChatTemplate::Encode(std::span<const ChatMessage> messages,
                                                          const Tokenizer& tokenizer) const {
  const Vocabulary& v = tokenizer.vocabulary();
  auto piece = [&v](int32_t id) {
    return id >= 0 && static_cast<size_t>(id) < v.size() ? v.pieces[id] : std::string();
  };
  absl::StatusOr<std::string> text = Apply(messages, piece(v.bos_id), piece(v.eos_id));
  if (!text.ok()) return text.status();
  // llama2 writes BOS itself; ChatML and llama3 leave it to the vocabulary's add_bos.
  const bool add_bos = format_ != ChatFormat::kLlama2;
  return tokenizer.Encode(*text, /*add_special=*/add_bos, /*parse_special=*/true);
}

std::vector<std::string> ChatTemplate::StopSequences() const {
  if (format_ == ChatFormat::kChatMl) return {kImEnd};
  if (format_ == ChatFormat::kLlama3) return {kEotId};
  return {};
}

}  // namespace pinfer
