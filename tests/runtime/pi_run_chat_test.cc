// pi-run -cnv end to end on the bundled stories260K: each reply is what pi-server's
// /v1/chat/completions answers at temperature 0 for the same messages (the server in this process,
// over the same model), so the template-formatted conversation is what reaches the model; the
// conversation stays in the KV cache (only each new turn's tokens are evaluated).
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "format/strings.h"
#include "gtest/gtest.h"
#include "runtime/text/chat_template.h"
#include "tests/runtime/test_models.h"
#include "tests/server/server_harness.h"

namespace pinfer {
namespace {

using nlohmann::json;

constexpr int kReplyTokens = 16;

test::ProgramResult PiRunChat(std::vector<std::string> args, const std::string& input) {
  std::vector<std::string> all = {"-m", test::StoriesPath(),         "--temp", "0", "-t", "1",
                                  "-n", std::to_string(kReplyTokens)};
  all.insert(all.end(), args.begin(), args.end());
  return test::RunProgram(PI_RUN_PATH, all, input);
}

// The server's greedy reply to `messages` (each {role, content}).
std::string ServerReply(PiServer& server, const json& messages) {
  const test::HttpReply reply =
      test::Post(server.port(), "/v1/chat/completions",
                 json{{"messages", messages}, {"temperature", 0}, {"max_tokens", kReplyTokens}});
  EXPECT_EQ(reply.status, 200) << reply.body;
  return test::ReplyText(reply.Json());
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

size_t TemplateTokens(const ChatTemplate& chat_template, const std::vector<ChatMessage>& messages) {
  absl::StatusOr<std::vector<int32_t>> tokens =
      chat_template.Encode(messages, *test::StoriesRuntime().tokenizer);
  EXPECT_TRUE(tokens.ok()) << tokens.status();
  return tokens.ok() ? tokens->size() : 0;
}

// Two turns (-p, then a line on stdin), then /exit: the line after it is never answered.
void ExpectTwoTurnsAsTheServer(const std::string& chat_template_flag, bool reply_kept) {
  ServerOptions options;
  options.chat_template = chat_template_flag;
  std::unique_ptr<PiServer> server = test::StartServer(options);
  ASSERT_NE(server, nullptr);
  const std::string first = "Hello", second = "Where is the cat?";
  const std::string reply1 =
      ServerReply(*server, json::array({{{"role", "user"}, {"content", first}}}));
  const std::string reply2 =
      ServerReply(*server, json::array({{{"role", "user"}, {"content", first}},
                                        {{"role", "assistant"}, {"content", reply1}},
                                        {{"role", "user"}, {"content", second}}}));
  ASSERT_FALSE(reply1.empty());
  ASSERT_FALSE(reply2.empty());
  ASSERT_NE(reply1, reply2);

  std::vector<std::string> args = {"-cnv", "-p", first};
  if (!chat_template_flag.empty()) {
    args.push_back("--chat-template");
    args.push_back(chat_template_flag);
  }
  const test::ProgramResult r = PiRunChat(args, second + "\n/exit\nnever answered\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, absl::StrCat(reply1, "\n", reply2, "\n")) << r.err;
  // One "> " before the second message, one before /exit; none after it.
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '>'), 2) << r.err;
  EXPECT_TRUE(absl::StrContains(
      r.err, absl::StrCat("pi-run: chat template ", server->chat_template().Describe())))
      << r.err;

  // The second turn evaluated only what the first did not: not the first turn's prompt again. The
  // reply's tokens stay in the KV cache when the template writes the reply as it was generated
  // (ChatML); llama2 writes it stripped of spaces, and a reply that did not start with exactly one
  // space is evaluated again as the template writes it.
  const std::vector<ChatMessage> turn1 = {{"user", first}};
  const std::vector<ChatMessage> turn2 = {{"user", first}, {"assistant", reply1}, {"user", second}};
  const int64_t t1 = static_cast<int64_t>(TemplateTokens(server->chat_template(), turn1));
  const int64_t t2 = static_cast<int64_t>(TemplateTokens(server->chat_template(), turn2));
  const int64_t evaluated = PromptTokensEvaluated(r.err);
  EXPECT_GT(evaluated, t1) << r.err;
  EXPECT_LE(evaluated, reply_kept ? t2 - kReplyTokens + 1 : t2) << r.err;
}

TEST(PiRunChatTest, RepliesAsTheServerAndKeepsTheConversationInTheKvCache) {
  ExpectTwoTurnsAsTheServer(
      "", /*reply_kept=*/true);  // the model records no template: ChatML, as pi-server
}

TEST(PiRunChatTest, Llama2TemplateRepliesAsTheServer) {
  ExpectTwoTurnsAsTheServer("llama2", /*reply_kept=*/false);
}

// Llama 3's format (--chat-template llama3, as a model whose template writes <|start_header_id|>
// gets): the same prompt as pi-server's. It trims the reply it writes back, so the reply's tokens
// are evaluated again, as with llama2.
TEST(PiRunChatTest, Llama3TemplateRepliesAsTheServer) {
  ExpectTwoTurnsAsTheServer("llama3", /*reply_kept=*/false);
}

TEST(PiRunChatTest, SystemMessageChangesTheReply) {
  std::unique_ptr<PiServer> server = test::StartServer();
  ASSERT_NE(server, nullptr);
  const std::string system = "You are a pirate who talks about the sea.";
  const std::string with_system =
      ServerReply(*server, json::array({{{"role", "system"}, {"content", system}},
                                        {{"role", "user"}, {"content", "Tell me a story."}}}));
  const std::string without =
      ServerReply(*server, json::array({{{"role", "user"}, {"content", "Tell me a story."}}}));
  ASSERT_NE(with_system, without);

  // -sys is llama.cpp's spelling of --system; the message comes on stdin, EOF ends the chat.
  const test::ProgramResult r = PiRunChat({"-cnv", "-sys", system}, "Tell me a story.\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, with_system + "\n");
  const test::ProgramResult plain = PiRunChat({"--conversation"}, "Tell me a story.\n");
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(plain.out, without + "\n");
}

// Without the context shift, a turn that does not fit the rest of the context starts the chat over
// from it: the context holds the second message and its reply alone, not the first turn too.
TEST(PiRunChatTest, AFullContextStartsTheChatOver) {
  std::unique_ptr<PiServer> server = test::StartServer();
  ASSERT_NE(server, nullptr);
  const std::string first = "Hello", second = "Where is the cat?";
  const std::string reply1 =
      ServerReply(*server, json::array({{{"role", "user"}, {"content", first}}}));
  const std::string alone =
      ServerReply(*server, json::array({{{"role", "user"}, {"content", second}}}));
  const size_t context =
      TemplateTokens(server->chat_template(), {{"user", second}}) + kReplyTokens + 1;
  const test::ProgramResult r = PiRunChat(
      {"-cnv", "--no-context-shift", "-c", std::to_string(context), "-p", first}, second + "\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "the chat started over from this message")) << r.err;
  EXPECT_EQ(r.out, absl::StrCat(reply1, "\n", alone, "\n"));
}

}  // namespace
}  // namespace pinfer
