#include "runtime/app/chat_conversation.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "format/strings.h"
#include "runtime/exec/generator.h"
#include "runtime/text/completion_text.h"

namespace pinfer {

ChatConversation::ChatConversation(Session& session, Sampler& sampler, const Tokenizer& tokenizer,
                                   ChatTemplate chat_template, std::string system,
                                   ChatContextShift context_shift)
    : session_(session),
      sampler_(sampler),
      tokenizer_(tokenizer),
      template_(chat_template),
      system_(std::move(system)),
      shift_(std::move(context_shift)) {
  if (!system_.empty()) messages_.push_back({"system", system_});
  // Every start of the session (the first turn, a start over) begins with the tokens that the
  // first turn's input has whatever the user's message: those two different messages share.
  auto first_turn = [this](const char* user) {
    std::vector<ChatMessage> m = messages_;
    m.push_back({"user", user});
    return template_.Encode(m, tokenizer_).value_or(std::vector<int32_t>());
  };
  const std::vector<int32_t> a = first_turn("a"), b = first_turn("b");
  const int64_t with_bos = !a.empty() && a.front() == tokenizer_.bos() ? 1 : 0;
  if (shift_.keep >= 0) {
    keep_tokens_ = with_bos + shift_.keep;
  } else if (system_.empty()) {
    keep_tokens_ = with_bos;
  } else {
    keep_tokens_ = std::mismatch(a.begin(), a.end(), b.begin(), b.end()).first - a.begin();
  }
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
  if (!held_text_.empty()) continued = ContinueWith(*full, next);
  // Without the conversation's start in the session the whole text cannot be evaluated again.
  bool fresh = !continued.has_value();
  bool start_over = fresh && shifted_;
  if (!fresh) {
    input = *std::move(continued);
    // Room for at least one token of the reply, after a shift when that is on; else start over.
    const int64_t held =
        shift_.enabled ? std::min(keep_tokens_, session_.position()) : session_.position();
    start_over = held + static_cast<int64_t>(input.size()) >= session_.context_length();
  }
  if (start_over) {
    fresh = true;
    result.restarted = true;
    next.clear();
    if (!system_.empty()) next.push_back({"system", system_});
    next.push_back({"user", std::string(user)});
    full = Format(next);
    if (!full.ok()) return full.status();
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
    shifted_ = false;
  } else if (absl::Status s = ShiftFor(static_cast<int64_t>(input.size()) + 1, result); !s.ok()) {
    return s;
  }
  result.evaluated = static_cast<int64_t>(input.size());

  // The reply ends as pi-server ends a chat completion: EOS, the template's stop sequences, and
  // those of them the vocabulary has as one piece as end tokens.
  GenerationOptions generation;
  generation.max_tokens = max_tokens;
  reply_first_held_ = 0;
  reply_position_ = session_.position() + static_cast<int64_t>(input.size());
  if (shift_.enabled && shift_.during_reply) {
    generation.context_shift = true;
    // Never inside the reply, so that the session holds the reply's tokens from some point on.
    generation.keep_tokens = std::min(keep_tokens_, reply_position_);
    generation.on_context_shift = [&](const ContextShift& shift) { NoteReplyShift(shift, result); };
  }
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
  result.generated = static_cast<int64_t>(generated->tokens.size());
  result.prompt = generated->prompt;
  result.decode = generated->decode;

  reply_tokens_ = generated->tokens;
  reply_evaluated_ = reply_tokens_.size() - (generated->pending_token >= 0 ? 1 : 0);
  reply_offset_ = full->size();
  held_text_ = absl::StrCat(Sv(*full), Sv(result.reply));
  messages_ = std::move(next);
  messages_.push_back({"assistant", result.reply});
  return result;
}

absl::Status ChatConversation::ShiftFor(int64_t n, ChatTurnResult& result) {
  const int64_t past = session_.position();
  if (past + n <= session_.context_length()) return absl::OkStatus();
  const int64_t keep = std::min(keep_tokens_, past);
  const int64_t discard = std::max((past - keep) / 2, past + n - session_.context_length());
  if (absl::Status s = session_.ShiftContext(keep, discard); !s.ok()) return s;
  shifted_ = true;
  ++result.context_shifts;
  if (shift_.on_shift) shift_.on_shift({keep, discard, session_.position()});
  return absl::OkStatus();
}

void ChatConversation::NoteReplyShift(const ContextShift& shift, ChatTurnResult& result) {
  // The generation keeps no more than what precedes the reply: the dropped tokens are the end of
  // what precedes it, then perhaps the reply's first ones.
  const int64_t dropped_end = shift.kept + shift.discarded;
  if (reply_position_ >= dropped_end) {
    reply_position_ -= shift.discarded;
  } else {
    reply_first_held_ += static_cast<size_t>(dropped_end - reply_position_);
    reply_position_ = shift.kept;
  }
  shifted_ = true;
  ++result.context_shifts;
  if (shift_.on_shift) shift_.on_shift(shift);
}

std::optional<std::vector<int32_t>> ChatConversation::ContinueWith(
    std::string_view text, const std::vector<ChatMessage>& messages) {
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
  if (kept < reply_first_held_) {
    // The template writes the reply's start otherwise (llama2 puts a space before it and strips
    // it), and a shift dropped that start: the session's tokens go on from later in the reply.
    std::optional<std::pair<size_t, size_t>> held = HeldReplyIn(text, messages);
    if (!held.has_value()) return std::nullopt;
    std::tie(kept, kept_end) = *held;
  }
  const size_t in_session = std::min(kept, reply_evaluated_);
  session_.Truncate(reply_position_ + static_cast<int64_t>(in_session - reply_first_held_));
  std::vector<int32_t> input(reply_tokens_.begin() + static_cast<std::ptrdiff_t>(in_session),
                             reply_tokens_.begin() + static_cast<std::ptrdiff_t>(kept));
  const std::vector<int32_t> rest =
      tokenizer_.EncodeContinuation(text.substr(kept_end), /*parse_special=*/true);
  input.insert(input.end(), rest.begin(), rest.end());
  return input;
}

std::optional<std::pair<size_t, size_t>> ChatConversation::HeldReplyIn(
    std::string_view text, const std::vector<ChatMessage>& messages) const {
  if (messages.size() < 2 || messages[messages.size() - 2].role != "assistant") return std::nullopt;
  // Where the template writes the reply: where `text` differs from the same conversation with an
  // empty reply, from the start and from the end.
  std::vector<ChatMessage> without = messages;
  without[without.size() - 2].content.clear();
  const absl::StatusOr<std::string> empty = Format(without);
  if (!empty.ok()) return std::nullopt;
  const size_t most = std::min(text.size(), empty->size());
  const size_t begin =
      std::mismatch(text.begin(), text.begin() + most, empty->begin()).first - text.begin();
  size_t suffix = 0;
  while (begin + suffix < most &&
         text[text.size() - 1 - suffix] == (*empty)[empty->size() - 1 - suffix]) {
    ++suffix;
  }
  const std::string_view written = text.substr(begin, text.size() - suffix - begin);
  // The template may drop the reply's edges (llama2 strips its spaces), not change its inside.
  const std::string_view reply = std::string_view(held_text_).substr(reply_offset_);
  const size_t lead = written.empty() ? std::string_view::npos : reply.find(written);
  if (lead == std::string_view::npos) return std::nullopt;
  size_t held_offset = 0;  // where the session's first reply token begins in the reply
  for (size_t i = 0; i < reply_first_held_; ++i) {
    held_offset += tokenizer_.TokenToPiece(reply_tokens_[i]).size();
  }
  if (held_offset < lead) return std::nullopt;
  // The held tokens that `text` writes as they are, from there on.
  size_t kept = reply_first_held_, kept_end = begin + (held_offset - lead);
  const size_t written_end = begin + written.size();
  while (kept < reply_tokens_.size()) {
    const std::string piece = tokenizer_.TokenToPiece(reply_tokens_[kept]);
    if (kept_end + piece.size() > written_end || text.substr(kept_end, piece.size()) != piece)
      break;
    kept_end += piece.size();
    ++kept;
  }
  if (kept == reply_first_held_ && kept < reply_evaluated_) return std::nullopt;
  return std::make_pair(kept, kept_end);
}

}  // namespace pinfer
