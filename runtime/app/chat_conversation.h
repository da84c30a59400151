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
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/session.h"
#include "runtime/text/chat_template.h"
#include "runtime/text/sampler.h"
#include "runtime/text/tokenizer.h"

namespace pinfer {

struct ChatTurnResult {
  std::string reply;      // the assistant's text, cut before a stop sequence
  int64_t evaluated = 0;  // input tokens evaluated for this turn, before the reply
  // The conversation no longer fitted the context: it started over from the system message and
  // this user message.
  bool restarted = false;
  bool context_full = false;  // the reply was cut by a full context
  ForwardStats prompt;        // evaluating the turn's input
  ForwardStats decode;        // evaluating the reply's tokens
};

class ChatConversation {
 public:
  // Keeps references to the session, the sampler and the tokenizer (they must outlive it). The
  // session should be empty; an empty `system` means no system message.
  ChatConversation(Session& session, Sampler& sampler, const Tokenizer& tokenizer,
                   ChatTemplate chat_template, std::string system);

  // Adds the user's message and generates the assistant's reply (at most `max_tokens` tokens, -1:
  // no limit). `on_text` gets the reply's text as it becomes final (a tail that may start a stop
  // sequence, or an incomplete UTF-8 character, is held back). Fails when the template refuses the
  // conversation, or when this message alone does not fit the context.
  absl::StatusOr<ChatTurnResult> Turn(std::string_view user, int64_t max_tokens,
                                      const std::function<void(std::string_view)>& on_text);

  const std::vector<ChatMessage>& messages() const { return messages_; }
  const ChatTemplate& chat_template() const { return template_; }

 private:
  // The template's text for `messages` (ending where the assistant's reply begins).
  absl::StatusOr<std::string> Format(const std::vector<ChatMessage>& messages) const;
  // The input of a turn whose template text is `text`, when the session holds the last reply: the
  // reply's tokens that the session has not evaluated and that `text` still contains, then the
  // rest of `text`. The session is truncated after the reply's tokens that `text` contains. nullopt
  // when `text` rewrites what comes before the reply (then the whole text is evaluated again).
  std::optional<std::vector<int32_t>> ContinueWith(std::string_view text);

  Session& session_;
  Sampler& sampler_;
  const Tokenizer& tokenizer_;
  const ChatTemplate template_;
  std::vector<ChatMessage> messages_;  // the system message (if any), then the turns so far
  std::string system_;
  // The last turn's template text followed by its reply (empty before the first turn).
  std::string held_text_;
  size_t reply_offset_ = 0;            // where the reply begins in held_text_
  int64_t reply_position_ = 0;         // where the reply's tokens begin in the session
  std::vector<int32_t> reply_tokens_;  // as generated, the last one perhaps not evaluated
  size_t reply_evaluated_ = 0;         // how many of them the session evaluated
};

}  // namespace pinfer
