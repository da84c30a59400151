// A chat held in one session, as llama-cli's conversation mode: each user message is formatted with
// the chat template (the server's code: runtime/text/chat_template.h), and only the text the
// template adds after what the session already holds (the end of the last reply, the new user
// message, the start of the assistant's reply) is evaluated; the conversation stays in the KV
// cache.
//
// The assistant's reply is generated until EOS, an end-of-turn token or stop sequence of the
// template (as pi-server ends a chat completion), the token budget, or a full context. The session
// then holds the reply's tokens as generated; the template may write the reply otherwise in the
// next turn's text (llama2 strips its spaces, a stop sequence spelled over several tokens is cut
// off): the reply's tokens beyond the text the two share are dropped from the session and the rest
// of the template's text is evaluated instead, so that the session holds the conversation as the
// template writes it, as a server request with the whole conversation would.
//
// With ChatContextShift on (llama-cli's context shift, pi-run's default), a full context does not
// end the chat: a turn whose input does not fit after the conversation first drops the oldest half
// (or more, as the input needs) of the tokens after the kept ones, and a reply that fills the
// context goes on through the generator's own shift. The session then holds the kept tokens
// followed by the most recent part of the conversation; the next turn still evaluates only what
// the template adds, never the dropped text again.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/generator.h"
#include "runtime/exec/session.h"
#include "runtime/text/chat_template.h"
#include "runtime/text/sampler.h"
#include "runtime/text/tokenizer.h"

namespace pinfer {

struct ChatTurnResult {
  std::string reply;      // the assistant's text, cut before a stop sequence
  int64_t evaluated = 0;  // input tokens evaluated for this turn, before the reply
  int64_t generated = 0;  // the reply's tokens (a last one at the token budget is not evaluated)
  // The conversation no longer fitted the context (without a context shift, or when the kept
  // tokens and this turn's input fill it): it started over from the system message and this user
  // message.
  bool restarted = false;
  bool context_full = false;   // the reply was cut by a full context
  int64_t context_shifts = 0;  // shifts made for this turn's input and its reply
  ForwardStats prompt;         // evaluating the turn's input
  ForwardStats decode;         // evaluating the reply's tokens
};

// How a chat makes room when the context is full.
struct ChatContextShift {
  // Off: a turn that does not fit starts the chat over from its message, a reply that fills the
  // context is cut.
  bool enabled = false;
  // Tokens a shift keeps at the start of the session: -1, the system message's (BOS and the
  // template's text before the first user message's content; BOS alone without a system message,
  // as llama.cpp keeps its initial prompt); else BOS and this many tokens after it (--keep).
  int64_t keep = -1;
  // Whether a reply may shift too; without a token budget a model that never ends its turn would
  // generate forever, so pi-run turns this off with -n -1 (the reply is cut instead).
  bool during_reply = true;
  std::function<void(const ContextShift&)> on_shift;  // told of each shift, when set
};

class ChatConversation {
 public:
  // Keeps references to the session, the sampler and the tokenizer (they must outlive it). The
  // session should be empty; an empty `system` means no system message.
  ChatConversation(Session& session, Sampler& sampler, const Tokenizer& tokenizer,
                   ChatTemplate chat_template, std::string system,
                   ChatContextShift context_shift = {});

  // Adds the user's message and generates the assistant's reply (at most `max_tokens` tokens, -1:
  // no limit). `on_text` gets the reply's text as it becomes final (a tail that may start a stop
  // sequence, or an incomplete UTF-8 character, is held back). Fails when the template refuses the
  // conversation, or when this message alone does not fit the context.
  absl::StatusOr<ChatTurnResult> Turn(std::string_view user, int64_t max_tokens,
                                      const std::function<void(std::string_view)>& on_text);

  const std::vector<ChatMessage>& messages() const { return messages_; }
  const ChatTemplate& chat_template() const { return template_; }
  // The tokens a context shift keeps (ChatContextShift::keep, resolved).
  int64_t keep_tokens() const { return keep_tokens_; }

 private:
  // The template's text for `messages` (ending where the assistant's reply begins).
  absl::StatusOr<std::string> Format(const std::vector<ChatMessage>& messages) const;
  // The input of a turn whose template text is `text` (for `messages`: the conversation, its last
  // reply, the new user message), when the session holds the last reply: the reply's tokens that
  // the session has not evaluated and that `text` still contains, then the rest of `text`. The
  // session is truncated after the reply's tokens that `text` contains. nullopt when `text`
  // rewrites what comes before the reply (then the whole text is evaluated again, or the chat
  // starts over after a shift), or the reply's held tokens cannot be found in it.
  std::optional<std::vector<int32_t>> ContinueWith(std::string_view text,
                                                   const std::vector<ChatMessage>& messages);
  // After a shift that dropped the start of the last reply, which `text` writes otherwise: how
  // many of the reply's tokens `text` contains (from the first one the session holds), and where
  // they end in `text`.
  std::optional<std::pair<size_t, size_t>> HeldReplyIn(
      std::string_view text, const std::vector<ChatMessage>& messages) const;
  // Drops the oldest tokens after the kept ones so that `n` more fit, as Generator's shift does
  // (llama.cpp's n_discard: half of them, or more when `n` needs it). Only when keep_tokens_ + n
  // fit the context.
  absl::Status ShiftFor(int64_t n, ChatTurnResult& result);
  // The GenerationOptions shift of a reply that begins at session position `reply_position_`,
  // keeping reply_position_ and reply_first_held_ up to date.
  void NoteReplyShift(const ContextShift& shift, ChatTurnResult& result);

  Session& session_;
  Sampler& sampler_;
  const Tokenizer& tokenizer_;
  const ChatTemplate template_;
  std::vector<ChatMessage> messages_;  // the system message (if any), then the turns so far
  std::string system_;
  const ChatContextShift shift_;
  int64_t keep_tokens_ = 0;
  // A shift dropped part of the conversation since the session last started it from the
  // beginning: the whole template text can no longer be evaluated again.
  bool shifted_ = false;
  // The last turn's template text followed by its reply (empty before the first turn).
  std::string held_text_;
  size_t reply_offset_ = 0;            // where the reply begins in held_text_
  std::vector<int32_t> reply_tokens_;  // as generated, the last one perhaps not evaluated
  size_t reply_evaluated_ = 0;         // how many of them the session evaluated
  // The first of them the session still holds (a shift may have dropped the reply's start)...
  size_t reply_first_held_ = 0;
  int64_t reply_position_ = 0;  // ...and its position in the session
};

}  // namespace pinfer
