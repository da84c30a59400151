#include "runtime/app/chat_conversation.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "format/strings.h"
#include "runtime/exec/generator.h"
#include "runtime/text/completion_text.h"

namespace pinfer {

ChatConversation::ChatConversation(Session& session, Sampler& sampler, const Tokenizer& tokenizer,
                                   ChatTemplate chat_template, std::string system)
    : session_(session),
      sampler_(sampler),
      tokenizer_(tokenizer),
      template_(chat_template),
      system_(std::move(system)) {
  if (!system_.empty()) messages_.push_back({"system", system_});
}

absl::StatusOr<std::string> ChatConversation::Format(
    const std::vector<ChatMessage>& messages) const {
  const Vocabulary& v = tokenizer_.vocabulary();
  auto piece = [&v](int32_t id) {
    return id >= 0 && static_cast<size_t>(id) < v.size() ? v.pieces[id] : std::string();
  };
  return template_.Apply(messages, piece(v.bos_id), piece(v.eos_id));
}

absl::StatusOr<ChatTurnResult> ChatConversation::Turn(
    std::string_view user, int64_t max_tokens,
    const std::function<void(std::string_view)>& on_text) {
  ChatTurnResult result;
  std::vector<ChatMessage> next = messages_;
  next.push_back({"user", std::string(user)});
  absl::StatusOr<std::string> full = Format(next);
  if (!full.ok()) return full.status();

  // Only what the template adds after the text the session holds is new.
  std::vector<int32_t> input;
  std::optional<std::vector<int32_t>> continued;
  if (!held_text_.empty()) continued = ContinueWith(*full);
  bool fresh = !continued.has_value();
  if (!fresh) {
    input = *std::move(continued);
    // Room for at least one token of the reply, else start over.
    if (session_.position() + static_cast<int64_t>(input.size()) >= session_.context_length()) {
      fresh = true;
      result.restarted = true;
      next.clear();
      if (!system_.empty()) next.push_back({"system", system_});
      next.push_back({"user", std::string(user)});
      full = Format(next);
      if (!full.ok()) return full.status();
    }
  }
  if (fresh) {
    absl::StatusOr<std::vector<int32_t>> tokens = template_.Encode(next, tokenizer_);
    if (!tokens.ok()) return tokens.status();
    input = *std::move(tokens);
    if (static_cast<int64_t>(input.size()) >= session_.context_length()) {
      return absl::OutOfRangeError(absl::StrCat(
          "the chat turn has ", input.size(), " tokens with the template, which leaves no room ",
          "for a reply in the context of ", session_.context_length(),
          " tokens (enlarge it with -c)"));
    }
    // The sampler goes on with its random stream; the prompt's tokens enter its repetition window
    // as they are evaluated.
    session_.Reset();
  }
  result.evaluated = static_cast<int64_t>(input.size());

  // The reply ends as pi-server ends a chat completion: EOS, the template's stop sequences, and
  // those of them the vocabulary has as one piece as end tokens.
  GenerationOptions generation;
  generation.max_tokens = max_tokens;
  std::vector<std::string> stop = template_.StopSequences();
  for (const std::string& s : stop) {
    if (const int32_t token = tokenizer_.PieceToToken(s); token >= 0) {
      generation.end_tokens.push_back(token);
    }
  }
  CompletionText text(std::move(stop));
  absl::StatusOr<GenerationResult> generated =
      Generate(session_, sampler_, tokenizer_, input, generation, [&](int32_t token) {
        const bool stopped = text.Append(tokenizer_.TokenToPiece(token));
        if (const std::string ready = text.TakeReady(); !ready.empty() && on_text) on_text(ready);
        return !stopped;
      });
  if (!generated.ok()) return generated.status();
  if (const std::string rest = text.TakeRest(); !rest.empty() && on_text) on_text(rest);
  result.reply = text.text();
  result.context_full = generated->context_full;
  result.prompt = generated->prompt;
  result.decode = generated->decode;

  reply_tokens_ = generated->tokens;
  reply_evaluated_ = reply_tokens_.size() - (generated->pending_token >= 0 ? 1 : 0);
  reply_position_ = session_.position() - static_cast<int64_t>(reply_evaluated_);
  reply_offset_ = full->size();
  held_text_ = absl::StrCat(Sv(*full), Sv(result.reply));
  messages_ = std::move(next);
  messages_.push_back({"assistant", result.reply});
  return result;
}

std::optional<std::vector<int32_t>> ChatConversation::ContinueWith(std::string_view text) {
  const size_t shared =
      std::mismatch(held_text_.begin(), held_text_.end(), text.begin(), text.end()).first -
      held_text_.begin();
  if (shared < reply_offset_) return std::nullopt;
  // The reply's tokens whose pieces lie wholly within the shared text.
  size_t kept = 0, kept_end = reply_offset_;
  while (kept < reply_tokens_.size()) {
    const size_t bytes = tokenizer_.TokenToPiece(reply_tokens_[kept]).size();
    if (kept_end + bytes > shared) break;
    kept_end += bytes;
    ++kept;
  }
  const size_t in_session = std::min(kept, reply_evaluated_);
  session_.Truncate(reply_position_ + static_cast<int64_t>(in_session));
  std::vector<int32_t> input(reply_tokens_.begin() + static_cast<std::ptrdiff_t>(in_session),
                             reply_tokens_.begin() + static_cast<std::ptrdiff_t>(kept));
  const std::vector<int32_t> rest =
      tokenizer_.EncodeContinuation(text.substr(kept_end), /*parse_special=*/true);
  input.insert(input.end(), rest.begin(), rest.end());
  return input;
}

}  // namespace pinfer
