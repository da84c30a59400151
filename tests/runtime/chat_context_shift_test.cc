// pi-run -cnv past a full context: ChatConversation shifts the context (llama-cli's context shift)
// instead of starting the chat over, before a turn's input that does not fit and while a reply
// fills the context, keeping the system message; what the session holds stays the conversation's
// text (its kept start, then its most recent part), so each turn still evaluates only what the
// template adds. --no-context-shift starts the chat over as before.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "format/strings.h"
#include "gtest/gtest.h"
#include "runtime/app/chat_conversation.h"
#include "runtime/text/chat_template.h"
#include "tests/runtime/runtime_harness.h"
#include "tests/runtime/story_words.h"
#include "tests/runtime/test_models.h"

namespace pinfer {
namespace {

using test::BundledModel;

std::string Stories() { return test::ConvertedModel(BundledModel::kStories260K, DType::kF32); }

const std::vector<std::string> kMessages = {"Where is the cat?", "Tell me about the dog.",
                                            "What did Lily do?", "Who found the ball?",
                                            "Why was Tom sad?"};
constexpr char kSystem[] = "You tell stories.";

std::string Pieces(const Tokenizer& tokenizer, std::span<const int32_t> tokens) {
  std::string text;
  for (int32_t t : tokens) text += tokenizer.TokenToPiece(t);
  return text;
}

// Five turns of 110 tokens in a context of 160: with the kept tokens (the system message: about
// 55 tokens of stories260K's small vocabulary in ChatML, 38 in llama2) each reply overflows the
// context, so that a shift drops the reply's own first tokens, and a turn's input (about 58
// tokens) may not fit after the last reply (a shift before it). llama2 writes a reply that does
// not begin with a space otherwise than it was generated (" " before it), at the start that the
// shift dropped.
void ExpectTurnsAfterShiftsEvaluateOnlyWhatTheTemplateAdds(ChatFormat format) {
  constexpr int64_t kContext = 160, kReply = 110;
  test::Loaded l = test::LoadForTest(Stories(), kContext);
  ASSERT_NE(l.session, nullptr);
  const Tokenizer& tokenizer = *l.tokenizer;
  const Vocabulary& vocabulary = tokenizer.vocabulary();
  const std::string bos = vocabulary.pieces[vocabulary.bos_id];
  const std::string eos = vocabulary.pieces[vocabulary.eos_id];
  SamplerParams greedy;
  greedy.temperature = 0.0f;
  Sampler sampler(greedy);
  const ChatTemplate chat_template(format);
  std::vector<ContextShift> shifts;
  ChatContextShift shift;
  shift.enabled = true;
  shift.on_shift = [&](const ContextShift& s) { shifts.push_back(s); };
  ChatConversation chat(*l.session, sampler, tokenizer, chat_template, kSystem, shift);

  // The kept tokens: BOS and the system message, up to where the user's text begins.
  const std::vector<ChatMessage> first = {{"system", kSystem}, {"user", kMessages[0]}};
  const std::vector<int32_t> first_tokens = *chat_template.Encode(first, tokenizer);
  const int64_t keep = chat.keep_tokens();
  ASSERT_EQ(first_tokens.front(), tokenizer.bos());
  ASSERT_GT(keep, 1);
  // (The first piece has SentencePiece's space prefix, which the text has not.)
  const std::string kept_text = std::string(absl::StripPrefix(
      Pieces(tokenizer, std::span<const int32_t>(first_tokens).subspan(1, keep - 1)), " "));
  const std::string first_text = *chat_template.Apply(first, bos, eos);
  const size_t after_bos = absl::StartsWith(first_text, bos) ? bos.size() : 0;
  EXPECT_TRUE(absl::StartsWith(first_text.substr(after_bos), kept_text)) << kept_text;
  EXPECT_TRUE(absl::StrContains(kept_text, kSystem)) << kept_text;
  EXPECT_LE(after_bos + kept_text.size(), first_text.find(kMessages[0])) << kept_text;

  std::vector<ChatMessage> messages = {{"system", kSystem}};
  std::string last_text, last_reply;  // the last turn's template text and its reply
  bool last_pending = false;          // the budget ended the last reply: its last token unevaluated
  int exact_checks = 0, budget_ends = 0;
  bool reply_head_dropped = false, shifted_before_input = false;
  for (const std::string& message : kMessages) {
    SCOPED_TRACE(message);
    messages.push_back({"user", message});
    const std::string text = *chat_template.Apply(messages, bos, eos);
    const int64_t position = l.session->position();
    const size_t shifts_before = shifts.size();
    absl::StatusOr<ChatTurnResult> turn = chat.Turn(message, kReply, nullptr);
    ASSERT_TRUE(turn.ok()) << turn.status();
    EXPECT_FALSE(turn->restarted);
    EXPECT_FALSE(turn->context_full);
    EXPECT_FALSE(turn->reply.empty());
    // stories260K does not end its turn this soon (the chat's model is a story model), so the
    // budget ends each reply; an end of turn is allowed for, not relied on.
    EXPECT_LE(turn->generated, kReply);
    const bool pending = turn->generated == kReply;
    budget_ends += pending ? 1 : 0;
    EXPECT_EQ(turn->context_shifts, static_cast<int64_t>(shifts.size() - shifts_before));
    for (size_t i = shifts_before; i < shifts.size(); ++i) EXPECT_EQ(shifts[i].kept, keep);

    // What the template adds after the last reply, and that reply's last token when the budget
    // ended it unevaluated: nothing the session held before, nothing a shift dropped. Exact when
    // the template writes the reply's end as it was generated (no spaces to strip there).
    const std::string core(absl::StripAsciiWhitespace(last_reply));
    if (!last_reply.empty() && absl::EndsWith(last_reply, core) &&
        (absl::StartsWith(last_reply, core) || absl::StartsWith(last_reply, " " + core))) {
      const size_t reply_at = text.find(core, last_text.size());
      ASSERT_NE(reply_at, std::string::npos);
      const std::string added = text.substr(reply_at + core.size());
      EXPECT_EQ(turn->evaluated,
                (last_pending ? 1 : 0) +
                    static_cast<int64_t>(
                        tokenizer.EncodeContinuation(added, /*parse_special=*/true).size()))
          << added;
      ++exact_checks;
    }
    // Where the reply began in the session, then whether a shift while it was generated dropped
    // its first tokens (the reply's tokens after them must still line up with the text).
    size_t i = shifts_before;
    int64_t reply_start = position + turn->evaluated;
    if (position + turn->evaluated + 1 > kContext) {
      ASSERT_LT(i, shifts.size());
      shifted_before_input = true;
      reply_start -= shifts[i++].discarded;
    }
    for (; i < shifts.size(); ++i) {
      if (reply_start < shifts[i].kept + shifts[i].discarded) reply_head_dropped = true;
      reply_start = std::max(shifts[i].kept, reply_start - shifts[i].discarded);
    }

    // The session holds the kept tokens, then the end of the reply up to its last evaluated
    // token: no gap, nothing twice.
    const std::string held = text + turn->reply;
    const std::vector<int32_t>& in_session = l.session->tokens();
    ASSERT_GT(static_cast<int64_t>(in_session.size()), keep);
    EXPECT_EQ(std::vector<int32_t>(in_session.begin(), in_session.begin() + keep),
              std::vector<int32_t>(first_tokens.begin(), first_tokens.begin() + keep));
    const std::string tail = Pieces(tokenizer, std::span<const int32_t>(in_session).subspan(keep));
    const size_t at = held.rfind(tail);
    ASSERT_NE(at, std::string::npos) << tail;
    const size_t unevaluated = held.size() - (at + tail.size());  // the pending token's piece
    if (!pending) EXPECT_EQ(unevaluated, 0u);
    if (pending) EXPECT_GT(unevaluated, 0u);
    EXPECT_LE(unevaluated, 16u);
    last_text = text;
    last_reply = turn->reply;
    last_pending = pending;
    messages.push_back({"assistant", turn->reply});
  }
  EXPECT_TRUE(reply_head_dropped);
  EXPECT_TRUE(shifted_before_input);
  EXPECT_GE(exact_checks, 3);
  EXPECT_GE(budget_ends, 3);
}

TEST(ChatContextShiftTest, ChatMlTurnsAfterShiftsEvaluateOnlyWhatTheTemplateAdds) {
  ExpectTurnsAfterShiftsEvaluateOnlyWhatTheTemplateAdds(ChatFormat::kChatMl);
}

TEST(ChatContextShiftTest, Llama2TurnsAfterShiftsEvaluateOnlyWhatTheTemplateAdds) {
  ExpectTurnsAfterShiftsEvaluateOnlyWhatTheTemplateAdds(ChatFormat::kLlama2);
}

// The N of stderr's "pi-run: prompt: N tokens", -1 when absent.
int64_t PromptTokensEvaluated(const std::string& err) {
  const size_t at = err.find("pi-run: prompt: ");
  if (at == std::string::npos) return -1;
  const size_t from = at + 16;
  int64_t n = -1;
  if (!absl::SimpleAtoi(Sv(std::string_view(err).substr(from, err.find(' ', from) - from)), &n)) {
    return -1;
  }
  return n;
}

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

size_t TemplateTokens(const std::vector<ChatMessage>& messages) {
  test::Loaded l = test::LoadForTest(Stories());
  absl::StatusOr<std::vector<int32_t>> tokens =
      ChatTemplate(ChatFormat::kChatMl).Encode(messages, *l.tokenizer);
  EXPECT_TRUE(tokens.ok()) << tokens.status();
  return tokens.ok() ? tokens->size() : 0;
}

// pi-run -cnv -c 192 with five turns of -n 64: every turn is answered in real words, the context
// shifts (noted as in plain generation), the chat never starts over, and the prompt tokens are
// each turn's additions only.
TEST(ChatContextShiftTest, PiRunChatsPastTheContextInRealWords) {
  const std::vector<std::string> args = {"-m", Stories(), "-cnv",   "-sys", kSystem, "-c", "192",
                                         "-n", "64",      "--temp", "0",    "-t",    "1"};
  const std::string input = absl::StrJoin(kMessages, "\n") + "\n";
  const test::ProgramResult r = test::RunProgram(PI_RUN_PATH, args, input);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(absl::StrContains(r.err, "started over")) << r.err;
  EXPECT_FALSE(absl::StrContains(r.err, "is full")) << r.err;
  EXPECT_GE(Count(r.err, "\npi-run: context shift: kept the first "), 3) << r.err;
  // The default keeps the system message: every shift keeps the same tokens, more than BOS.
  const size_t at = r.err.find("context shift: kept the first ");
  ASSERT_NE(at, std::string::npos);
  const std::string note = r.err.substr(at, r.err.find(" tokens", at) - at);
  EXPECT_NE(note, "context shift: kept the first 1") << r.err;
  EXPECT_EQ(Count(r.err, note + " tokens, dropped the next "),
            Count(r.err, "context shift: kept the first "))
      << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "decode: 315 tokens")) << r.err;  // 5 x 63, the 64th not

  // 5 replies of 64 tokens, made of the stories' words.
  const std::vector<std::string> words = test::Words(r.out);
  EXPECT_GT(words.size(), 100u) << r.out;
  EXPECT_GT(test::KnownWordShare(words), 0.9) << r.out;

  // No turn evaluated the conversation again: the first turn's input, then for each later one the
  // last reply's unevaluated token and the template's text around the new message.
  size_t bound = TemplateTokens({{"system", kSystem}, {"user", kMessages[0]}});
  for (size_t i = 1; i < kMessages.size(); ++i) {
    bound += 1 + TemplateTokens({{"assistant", "x"}, {"user", kMessages[i]}});
  }
  const int64_t evaluated = PromptTokensEvaluated(r.err);
  EXPECT_GT(evaluated, 0) << r.err;
  EXPECT_LE(evaluated, static_cast<int64_t>(bound)) << r.err;

  // --keep N keeps BOS and N tokens instead of the system message.
  std::vector<std::string> keep3 = args;
  keep3.insert(keep3.end(), {"--keep", "3"});
  const test::ProgramResult kept = test::RunProgram(PI_RUN_PATH, keep3, input);
  ASSERT_EQ(kept.exit_code, 0) << kept.err;
  EXPECT_GE(Count(kept.err, "\npi-run: context shift: kept the first 4 tokens, dropped the next "),
            3)
      << kept.err;
  EXPECT_EQ(Count(kept.err, "context shift: kept the first 4 tokens"),
            Count(kept.err, "context shift: kept the first "))
      << kept.err;
  EXPECT_FALSE(absl::StrContains(kept.err, "started over")) << kept.err;

  // Without a budget (-n -1) a reply does not shift (stories260K would never end it): it is cut
  // by the full context, and the next turn's input shifts to fit.
  std::vector<std::string> unbounded = args;
  unbounded[8] = "-1";
  const test::ProgramResult cut = test::RunProgram(PI_RUN_PATH, unbounded, input);
  ASSERT_EQ(cut.exit_code, 0) << cut.err;
  EXPECT_EQ(Count(cut.err, "the reply was cut\n"), static_cast<int>(kMessages.size())) << cut.err;
  EXPECT_EQ(Count(cut.err, "context shift: kept the first "),
            static_cast<int>(kMessages.size()) - 1)
      << cut.err;
  EXPECT_FALSE(absl::StrContains(cut.err, "started over")) << cut.err;

  // --no-context-shift: the chat starts over, as before.
  std::vector<std::string> no_shift = args;
  no_shift.push_back("--no-context-shift");
  const test::ProgramResult over = test::RunProgram(PI_RUN_PATH, no_shift, input);
  ASSERT_EQ(over.exit_code, 0) << over.err;
  EXPECT_TRUE(absl::StrContains(over.err, "the chat started over from this message")) << over.err;
  EXPECT_FALSE(absl::StrContains(over.err, "context shift")) << over.err;
}

}  // namespace
}  // namespace pinfer
