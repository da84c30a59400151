// pi-server end to end, in process: a PiServer on a loopback port, a real HTTP client on every
// endpoint; greedy answers against pi-run's; parallel clients; the queue; clients that go away;
// every kind of bad request; a bounded load test.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "format/metadata.h"
#include "gtest/gtest.h"
#include "runtime/app/runtime_flags.h"
#include "runtime/text/chat_template.h"
#include "tests/runtime/test_models.h"
#include "tests/server/server_harness.h"

namespace pinfer {
namespace {

using nlohmann::json;
using test::ExpectApiError;
using test::HttpReply;
using test::StreamReply;

constexpr char kCompletions[] = "/v1/completions";
constexpr char kChat[] = "/v1/chat/completions";

json Greedy(const std::string& prompt, int max_tokens) {
  return json{{"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}};
}

// pi-run's greedy continuation of `prompt` (its stdout is the prompt, the generation and "\n").
std::string PiRunGreedy(const std::string& prompt, int n) {
  const test::ProgramResult r = test::RunProgram(
      PI_RUN_PATH,
      {"-m", test::StoriesPath(), "-p", prompt, "-n", std::to_string(n), "--temp", "0"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StartsWith(r.out, prompt)) << r.out;
  EXPECT_TRUE(absl::EndsWith(r.out, "\n")) << r.out;
  if (r.out.size() < prompt.size() + 1) return "";
  return r.out.substr(prompt.size(), r.out.size() - prompt.size() - 1);
}

// Waits (up to 20 s) until `condition` holds.
template <typename Condition>
bool Eventually(Condition condition) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < until) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return condition();
}

TEST(ServerTest, HealthAndModels) {
  std::unique_ptr<PiServer> server = test::StartServer();
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  EXPECT_GT(port, 0);
  const std::string name = server->model_name();
  EXPECT_TRUE(absl::StartsWith(name, "stories260K")) << name;

  const HttpReply health = test::Get(port, "/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.Json()["status"], "ok");
  EXPECT_EQ(health.Json()["slots"], 1);
  EXPECT_EQ(health.Json()["slots_busy"], 0);

  const HttpReply models = test::Get(port, "/v1/models");
  ASSERT_EQ(models.status, 200);
  EXPECT_EQ(models.content_type, "application/json");
  const json list = models.Json();
  EXPECT_EQ(list["object"], "list");
  ASSERT_EQ(list["data"].size(), 1u);
  EXPECT_EQ(list["data"][0]["id"], name);
  EXPECT_EQ(list["data"][0]["object"], "model");
  EXPECT_TRUE(list["data"][0]["created"].is_number_integer());

  const HttpReply one = test::Get(port, "/v1/models/" + name);
  EXPECT_EQ(one.status, 200);
  EXPECT_EQ(one.Json()["id"], name);
  ExpectApiError(test::Get(port, "/v1/models/gpt-4"), 404, "model_not_found", "'gpt-4'");
  ExpectApiError(test::Get(port, "/v1/nothing"), 404, "unknown_url", "/v1/nothing");
  // A known path asked with another method: 405, naming what it answers, in Allow too.
  const HttpReply get_completions = test::Get(port, "/v1/completions");
  ExpectApiError(get_completions, 405, "method_not_allowed",
                 "/v1/completions answers POST, not GET");
  EXPECT_EQ(get_completions.Header("Allow"), "POST");
  const HttpReply get_chat = test::Get(port, "/v1/chat/completions");
  ExpectApiError(get_chat, 405, "method_not_allowed", "POST");
  EXPECT_EQ(get_chat.Header("Allow"), "POST");
  const HttpReply post_health = test::Post(port, "/health", json::object());
  ExpectApiError(post_health, 405, "method_not_allowed", "/health answers GET, HEAD, not POST");
  EXPECT_EQ(post_health.Header("Allow"), "GET, HEAD");
}

TEST(ServerTest, GreedyCompletionsEqualPiRun) {
  const std::vector<std::string> prompts = {"Once upon a time", "The little dog",
                                            "Tom and Lily went", ""};
  std::map<std::string, std::vector<std::string>> pieces;
  for (const std::string& prompt : prompts) pieces[prompt] = test::GreedyPieces(prompt, 40);
  std::unique_ptr<PiServer> server = test::StartServer();
  ASSERT_NE(server, nullptr);
  for (const std::string& prompt : prompts) {
    SCOPED_TRACE(prompt);
    const std::string expected = PiRunGreedy(prompt, 40);
    ASSERT_FALSE(expected.empty());

    const HttpReply reply = test::Post(server->port(), kCompletions, Greedy(prompt, 40));
    ASSERT_EQ(reply.status, 200) << reply.body;
    const json body = reply.Json();
    EXPECT_EQ(body["object"], "text_completion");
    EXPECT_TRUE(absl::StartsWith(body["id"].get<std::string>(), "cmpl-"));
    EXPECT_EQ(body["model"], server->model_name());
    EXPECT_EQ(test::ReplyText(body), expected);
    EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(body["usage"]["completion_tokens"], 40);
    const int64_t prompt_tokens =
        static_cast<int64_t>(test::StoriesRuntime().tokenizer->Encode(prompt).size());
    EXPECT_EQ(body["usage"]["prompt_tokens"], prompt_tokens);
    EXPECT_EQ(body["usage"]["total_tokens"], prompt_tokens + 40);

    // The same, streamed: the deltas add up to the same text, then a finish chunk and [DONE].
    json streamed_request = Greedy(prompt, 40);
    streamed_request["stream"] = true;
    streamed_request["stream_options"] = {{"include_usage", true}};
    const StreamReply stream = test::PostStream(server->port(), kCompletions, streamed_request);
    ASSERT_EQ(stream.status, 200) << stream.raw;
    EXPECT_EQ(stream.content_type, "text/event-stream");
    EXPECT_TRUE(stream.done) << stream.raw;
    EXPECT_TRUE(absl::EndsWith(stream.raw, "data: [DONE]\n\n"));
    EXPECT_EQ(stream.Text(), expected);
    EXPECT_EQ(stream.FinishReason(), "length");
    // An event per token, each with that token's text, however the client and the scheduler
    // thread happened to take turns; then the finish event and the usage event.
    EXPECT_EQ(stream.Pieces(), pieces.at(prompt));
    EXPECT_EQ(stream.events.size(), 40u + 2u);
    for (const json& e : stream.events) {
      EXPECT_EQ(e["object"], "text_completion");
      EXPECT_EQ(e["id"], stream.events[0]["id"]);
    }
    const json& usage = stream.events.back();
    EXPECT_TRUE(usage["choices"].empty());
    EXPECT_EQ(usage["usage"]["completion_tokens"], 40);
  }
}

TEST(ServerTest, ChatAppliesTheTemplate) {
  std::unique_ptr<PiServer> server = test::StartServer();
  ASSERT_NE(server, nullptr);
  // stories260K records no chat template: ChatML by default.
  EXPECT_EQ(server->chat_template().format(), ChatFormat::kChatMl);
  const std::vector<ChatMessage> messages = {{"system", "Tell stories."},
                                             {"user", "Once upon a time"}};
  const json chat_request = {{"messages",
                              {{{"role", "system"}, {"content", "Tell stories."}},
                               {{"role", "user"}, {"content", "Once upon a time"}}}},
                             {"max_tokens", 24},
                             {"temperature", 0},
                             {"model", server->model_name()}};
  // The chat answer is the completion of the rendered conversation's tokens.
  const std::vector<int32_t> tokens =
      *server->chat_template().Encode(messages, *test::StoriesRuntime().tokenizer);
  const HttpReply completion = test::Post(
      server->port(), kCompletions, {{"prompt", tokens}, {"max_tokens", 24}, {"temperature", 0}});
  ASSERT_EQ(completion.status, 200) << completion.body;
  const std::string expected = test::ReplyText(completion.Json());

  const HttpReply reply = test::Post(server->port(), kChat, chat_request);
  ASSERT_EQ(reply.status, 200) << reply.body;
  const json body = reply.Json();
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_TRUE(absl::StartsWith(body["id"].get<std::string>(), "chatcmpl-"));
  EXPECT_EQ(body["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(test::ReplyText(body), expected);
  EXPECT_EQ(body["usage"]["prompt_tokens"], static_cast<int64_t>(tokens.size()));

  json stream_request = chat_request;
  stream_request["stream"] = true;
  stream_request["stream_options"] = {{"include_usage", true}};
  const StreamReply stream = test::PostStream(server->port(), kChat, stream_request);
  ASSERT_EQ(stream.status, 200) << stream.raw;
  EXPECT_TRUE(stream.done);
  ASSERT_GE(stream.events.size(), 2u);
  EXPECT_EQ(stream.events.front()["object"], "chat.completion.chunk");
  EXPECT_EQ(stream.events.front()["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(stream.Text(), expected);
  EXPECT_EQ(stream.FinishReason(), body["choices"][0]["finish_reason"]);
  // A delta per generated token (nothing held back: the text has no "<" of "<|im_end|>").
  ASSERT_FALSE(absl::StrContains(expected, "<")) << expected;
  EXPECT_EQ(static_cast<int64_t>(stream.Pieces().size()),
            stream.events.back()["usage"]["completion_tokens"].get<int64_t>());
  EXPECT_EQ(stream.events.back()["usage"]["completion_tokens"], body["usage"]["completion_tokens"]);
}

TEST(ServerTest, ChatTemplateFlagOverridesTheDefault) {
  ServerOptions options;
  options.chat_template = "llama2";
  std::unique_ptr<PiServer> server = test::StartServer(options);
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->chat_template().format(), ChatFormat::kLlama2);
  // llama2 needs alternating roles: its refusal is a 400 naming the problem.
  const HttpReply bad =
      test::Post(server->port(), kChat,
                 {{"messages", {{{"role", "assistant"}, {"content", "Hi"}}}}, {"max_tokens", 4}});
  ExpectApiError(bad, 400, "", "alternating");
  const HttpReply good =
      test::Post(server->port(), kChat,
                 {{"messages", {{{"role", "user"}, {"content", "Hi"}}}}, {"max_tokens", 4}});
  ASSERT_EQ(good.status, 200) << good.body;
  // "<s>[INST] Hi [/INST]": BOS and 7 more tokens.
  const Tokenizer& t = *test::StoriesRuntime().tokenizer;
  EXPECT_EQ(good.Json()["usage"]["prompt_tokens"],
            1 + static_cast<int64_t>(t.Encode("[INST] Hi [/INST]", false).size()));
}

TEST(ServerTest, TheModelsChatTemplateIsUsed) {
  // stories260K with the Llama-2-chat template recorded, as pi-convert records a GGUF's
  // tokenizer.chat_template or an HF tokenizer_config.json's chat_template.
  const std::string path = test::ScratchDir() + "/stories-llama2-chat.pi";
  ASSERT_TRUE(test::RewriteModel(test::StoriesPath(), path, [](Metadata& m) {
                m.SetString("tokenizer.chat_template",
                            "{% for message in messages %}{% if message['role'] == 'user' %}{{ "
                            "bos_token + '[INST] ' + message['content'].strip() + ' [/INST]' }}"
                            "{% endif %}{% endfor %}");
              }).ok());
  RuntimeFlags flags;
  flags.model_path = path;
  LoadedRuntime rt = *LoadRuntime(flags);
  ServerOptions options;
  options.port = 0;
  options.log_requests = false;
  std::unique_ptr<PiServer> server = *PiServer::Create(*rt.executor, *rt.tokenizer, {}, options);
  ASSERT_TRUE(server->Start().ok());
  EXPECT_EQ(server->model_name(), "stories-llama2-chat");
  EXPECT_EQ(server->chat_template().format(), ChatFormat::kLlama2);
  EXPECT_EQ(server->chat_template().origin(), ChatTemplate::Origin::kModel);
  const HttpReply reply =
      test::Post(server->port(), kChat,
                 {{"messages", {{{"role", "user"}, {"content", "Hi"}}}}, {"max_tokens", 4}});
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.Json()["usage"]["prompt_tokens"],
            1 + static_cast<int64_t>(rt.tokenizer->Encode("[INST] Hi [/INST]", false).size()));
  server->Shutdown(std::chrono::milliseconds(0));
}

TEST(ServerTest, StopSequencesSeedsAndLimits) {
  std::unique_ptr<PiServer> server = test::StartServer();
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  const std::string full =
      test::ReplyText(test::Post(port, kCompletions, Greedy("Once upon a time", 40)).Json());
  // reference_outputs.md: ", there was a little girl named Lily. She loved to play outside..."
  ASSERT_TRUE(absl::StartsWith(full, ", there was a little girl named Lily.")) << full;

  json stopped = Greedy("Once upon a time", 40);
  stopped["stop"] = {"girl", "zebra"};
  const json a = test::Post(port, kCompletions, stopped).Json();
  EXPECT_EQ(test::ReplyText(a), ", there was a little ");
  EXPECT_EQ(a["choices"][0]["finish_reason"], "stop");
  EXPECT_LT(a["usage"]["completion_tokens"].get<int>(), 40);
  // The same, streamed: nothing of the stop sequence leaks into the chunks.
  stopped["stream"] = true;
  const StreamReply s = test::PostStream(port, kCompletions, stopped);
  EXPECT_EQ(s.Text(), ", there was a little ");
  EXPECT_EQ(s.FinishReason(), "stop");

  // Sampling with a seed is reproducible; another seed gives another text.
  json sampled = {{"prompt", "Tom"}, {"max_tokens", 32}, {"temperature", 1.0}, {"seed", 7}};
  const std::string first = test::ReplyText(test::Post(port, kCompletions, sampled).Json());
  const std::string again = test::ReplyText(test::Post(port, kCompletions, sampled).Json());
  sampled["seed"] = 8;
  const std::string other = test::ReplyText(test::Post(port, kCompletions, sampled).Json());
  EXPECT_EQ(first, again);
  EXPECT_NE(first, other);

  // Without max_tokens a completion runs until EOS or the context is full (512 tokens here).
  const json open = test::Post(port, kCompletions, {{"prompt", "Once"}, {"temperature", 0}}).Json();
  const int64_t prompt_tokens = open["usage"]["prompt_tokens"];
  const int64_t generated = open["usage"]["completion_tokens"];
  if (open["choices"][0]["finish_reason"] == "length") {
    EXPECT_EQ(prompt_tokens + generated, 512) << open.dump();
  } else {
    EXPECT_LT(prompt_tokens + generated, 512) << open.dump();
  }
}

TEST(ServerTest, BadRequestsGetJsonErrors) {
  ServerOptions options;
  options.max_body_bytes = 4096;
  options.max_tokens = 300;
  options.strict_model = true;  // another model's name is a 404 (--strict-model)
  std::unique_ptr<PiServer> server = test::StartServer(options, /*context=*/64);
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  ExpectApiError(test::PostRaw(port, kCompletions, "{\"prompt\": \"Once"), 400, "invalid_json",
                 "not valid JSON");
  ExpectApiError(test::PostRaw(port, kChat, "[1, 2,"), 400, "invalid_json", "not valid JSON");
  // Over --max-body: with a Content-Length, and sent in chunks without one.
  const std::string big = json{{"prompt", std::string(5000, 'a')}}.dump();
  ExpectApiError(test::PostRaw(port, kCompletions, big), 413, "payload_too_large", "4.00 KiB");
  {
    httplib::Client client("127.0.0.1", port);
    const httplib::Result r = client.Post(
        kCompletions,
        [&big](size_t offset, httplib::DataSink& sink) {
          if (offset < big.size()) {
            sink.write(big.data() + offset, std::min<size_t>(1000, big.size() - offset));
          } else {
            sink.done();
          }
          return true;
        },
        "application/json");
    ASSERT_TRUE(r) << httplib::to_string(r.error());
    HttpReply reply{r->status, r->body, r->get_header_value("Content-Type"), r->headers};
    ExpectApiError(reply, 413, "payload_too_large", "--max-body");
  }
  ExpectApiError(test::Post(port, kCompletions, {{"prompt", "Hi"}, {"model", "gpt-4o"}}), 404,
                 "model_not_found", "'gpt-4o'");
  ExpectApiError(test::Post(port, kCompletions, {{"prompt", "Hi"}, {"max_tokens", 100}}), 400,
                 "context_length_exceeded", "beyond the context of 64");
  ExpectApiError(
      test::Post(port, kCompletions, {{"prompt", "Once upon a time"}, {"max_tokens", 60}}), 400,
      "context_length_exceeded", "the prompt has 5");
  const std::string long_prompt =
      test::ReadRepoFile("tests/data/text/tinystories_valid_head.txt").substr(0, 2000);
  ExpectApiError(test::Post(port, kCompletions, {{"prompt", long_prompt}}), 400,
                 "context_length_exceeded", "leaves no room");
  ExpectApiError(test::Post(port, kCompletions, {{"prompt", "Hi"}, {"temperature", 5}}), 400, "",
                 "'temperature'");
  ExpectApiError(test::Post(port, kCompletions, {{"prompt", {1, 100000}}}), 400, "",
                 "outside the vocabulary");
  ExpectApiError(test::Post(port, kChat, {{"prompt", "Hi"}}), 400, "", "'messages' is required");
  // The server is still fine.
  EXPECT_EQ(test::Post(port, kCompletions, Greedy("Hi", 4)).status, 200);
}

TEST(ServerTest, ApiKeyIsRequiredWhenSet) {
  ServerOptions options;
  options.api_key = "sekret-123";
  std::unique_ptr<PiServer> server = test::StartServer(options);
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  const httplib::Headers good = {{"Authorization", "Bearer sekret-123"}};
  const httplib::Headers wrong = {{"Authorization", "Bearer sekret-124"}};
  ExpectApiError(test::Post(port, kCompletions, Greedy("Hi", 4)), 401, "invalid_api_key",
                 "no API key");
  ExpectApiError(test::Post(port, kCompletions, Greedy("Hi", 4), wrong), 401, "invalid_api_key",
                 "incorrect API key");
  ExpectApiError(test::Get(port, "/v1/models"), 401, "invalid_api_key", "no API key");
  ExpectApiError(test::Get(port, "/v1/models", wrong), 401, "invalid_api_key", "incorrect");
  json streamed = Greedy("Hi", 4);
  streamed["stream"] = true;
  const StreamReply refused = test::PostStream(port, kChat, streamed, {}, wrong);
  EXPECT_EQ(refused.status, 401);
  EXPECT_TRUE(refused.events.empty());

  EXPECT_EQ(test::Post(port, kCompletions, Greedy("Hi", 4), good).status, 200);
  EXPECT_EQ(test::Get(port, "/v1/models", good).status, 200);
  EXPECT_EQ(test::Get(port, "/health").status, 200);  // probes need no key
}

// The sequential greedy answers of `prompts` on `server`.
std::map<std::string, std::string> SequentialAnswers(int port,
                                                     const std::vector<std::string>& prompts,
                                                     int n) {
  std::map<std::string, std::string> answers;
  for (const std::string& p : prompts) {
    answers[p] = test::ReplyText(test::Post(port, kCompletions, Greedy(p, n)).Json());
  }
  return answers;
}

TEST(ServerTest, ParallelClientsEachGetTheirAnswer) {
  ServerOptions options;
  options.scheduler.parallel = 4;
  std::unique_ptr<PiServer> server = test::StartServer(options);
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  const std::vector<std::string> prompts = {"Once upon a time", "The little dog", "Tom had a",
                                            "Lily saw a big",   "One day, Ben",   "The sun was",
                                            "Mom said",         "A cat and a"};
  const std::map<std::string, std::string> expected = SequentialAnswers(port, prompts, 32);
  EXPECT_EQ(expected.at("Once upon a time"), PiRunGreedy("Once upon a time", 32));

  std::vector<std::string> answers(prompts.size());
  std::vector<std::thread> clients;
  for (size_t i = 0; i < prompts.size(); ++i) {
    clients.emplace_back([&, i] {
      json request = Greedy(prompts[i], 32);
      if (i % 2 == 1) {
        request["stream"] = true;
        answers[i] = test::PostStream(port, kCompletions, request).Text();
      } else {
        answers[i] = test::ReplyText(test::Post(port, kCompletions, request).Json());
      }
    });
  }
  for (std::thread& t : clients) t.join();
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(answers[i], expected.at(prompts[i])) << prompts[i];
  }
}

// The tests below hold generations at a chosen token (test::HoldPoint) where they would otherwise
// race the clock: a generation the test needs unfinished cannot finish, however fast the machine.

TEST(ServerTest, SlotsInterleave) {
  const std::vector<std::string> a_pieces = test::GreedyPieces("Once upon a time", 48);
  const std::vector<std::string> b_pieces = test::GreedyPieces("The little dog", 16);
  // Which generation each forward pass was for, in order ('A' or 'B', told by max_tokens).
  std::mutex order_mutex;
  std::string order;
  // A waits at its first token until B is running too.
  test::HoldPoint a_waits(test::WithMaxTokens(48), /*at=*/1);
  ServerOptions options;
  options.scheduler.parallel = 2;
  options.scheduler.hold = [&](const Generation& g, int64_t generated) {
    if (a_waits.Holds(g, generated)) return true;
    std::lock_guard<std::mutex> lock(order_mutex);
    order += g.request().max_tokens == 48 ? 'A' : 'B';
    if (g.request().max_tokens == 16) a_waits.Release();
    return false;
  };
  std::unique_ptr<PiServer> server = test::StartServer(options);
  ASSERT_NE(server, nullptr);
  const int port = server->port();

  // A and B at once: their forward passes alternate, one each per round, while both run (a server
  // that ran requests one after the other would give AAAA...BBBB).
  std::string a_text;
  std::jthread a([&] {
    a_text = test::ReplyText(test::Post(port, kCompletions, Greedy("Once upon a time", 48)).Json());
  });
  ASSERT_TRUE(a_waits.WaitUntilHeld());
  const std::string b_text =
      test::ReplyText(test::Post(port, kCompletions, Greedy("The little dog", 16)).Json());
  a.join();
  EXPECT_EQ(a_text, absl::StrJoin(a_pieces, ""));
  EXPECT_EQ(b_text, absl::StrJoin(b_pieces, ""));
  std::lock_guard<std::mutex> lock(order_mutex);
  // B's 16 passes (its prompt, then 15 tokens: the 16th is not evaluated), each after one of A's
  // but the first; A's 48 passes (its prompt, then 47 tokens) in all.
  std::string alternating = "B";
  for (int i = 0; i < 15; ++i) alternating += "AB";
  const size_t first_b = order.find('B');
  ASSERT_NE(first_b, std::string::npos) << order;
  EXPECT_EQ(order.substr(first_b, order.rfind('B') - first_b + 1), alternating) << order;
  EXPECT_EQ(std::count(order.begin(), order.end(), 'B'), 16) << order;
  EXPECT_EQ(std::count(order.begin(), order.end(), 'A'), 48) << order;
}

TEST(ServerTest, AStreamingClientThatLeavesFreesItsSlot) {
  // Held at its first token (else it could finish before the server noticed the client leave).
  test::HoldPoint held(test::WithMaxTokens(48), /*at=*/1);
  ServerOptions options;
  options.scheduler.hold = held.Hook();
  std::unique_ptr<PiServer> server = test::StartServer(options);
  ASSERT_NE(server, nullptr);
  json request = Greedy("Once upon a time", 48);
  request["stream"] = true;
  const StreamReply left =
      test::PostStream(server->port(), kCompletions, request, [](const json&) { return false; });
  EXPECT_FALSE(left.done);
  EXPECT_EQ(left.FinishReason(), "");
  ASSERT_TRUE(Eventually([&] { return server->stats().busy_slots == 0; }));
  const SchedulerStats stats = server->stats();
  EXPECT_EQ(stats.finished, 1);
  EXPECT_EQ(stats.generated_tokens, 1);  // cancelled where it was held
  // The slot serves the next request.
  EXPECT_EQ(test::Post(server->port(), kCompletions, Greedy("Tom", 4)).status, 200);
}

// Every way a client leaves is logged, a stream's included, in the same style.
TEST(ServerTest, ClientsThatLeaveAreLogged) {
  test::LogCapture log;
  // The long generations stop at their first token until their clients have gone.
  test::HoldPoint held(test::WithMaxTokens(3000), /*at=*/1);
  ServerOptions options;
  options.max_tokens = 4000;
  options.log = log.Sink();
  options.scheduler.hold = held.Hook();
  std::unique_ptr<PiServer> server = test::StartServer(options, /*context=*/4096);
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  json long_request = Greedy("Once upon a time", 3000);
  long_request["stream"] = true;
  const StreamReply left =
      test::PostStream(port, kCompletions, long_request, [](const json&) { return false; });
  EXPECT_FALSE(left.done);
  ASSERT_TRUE(Eventually([&] { return log.Contains("the client went away while streaming"); }))
      << absl::StrJoin(log.Lines(), "\n");
  {
    // Held, the generation cannot answer; the client gives up after 100 ms.
    httplib::Client impatient("127.0.0.1", port);
    impatient.set_read_timeout(std::chrono::milliseconds(100));
    EXPECT_FALSE(
        impatient.Post(kCompletions, Greedy("Once upon a time", 3000).dump(), "application/json"));
  }
  ASSERT_TRUE(Eventually([&] { return log.Contains(": the client went away"); }));
  long_request["max_tokens"] = 4;
  EXPECT_TRUE(test::PostStream(port, kCompletions, long_request).done);
  ASSERT_TRUE(Eventually([&] { return log.Contains("200 stream"); }));
  // One line each, "<client> POST <path>: <what happened>".
  const std::vector<std::string> lines = log.Lines();
  ASSERT_EQ(lines.size(), 3u) << absl::StrJoin(lines, "\n");
  EXPECT_TRUE(absl::StartsWith(lines[0], "127.0.0.1:")) << lines[0];
  EXPECT_TRUE(absl::StrContains(
      lines[0],
      " POST /v1/completions: the client went away while streaming, after 1 generated "
      "tokens"))
      << lines[0];
  EXPECT_TRUE(absl::StrContains(lines[1], " POST /v1/completions: the client went away"))
      << lines[1];
  EXPECT_TRUE(absl::StrContains(lines[2], " POST /v1/completions: 200 stream, ")) << lines[2];
}

TEST(ServerTest, TheQueueIsBoundedAndAQueuedClientCanLeave) {
  test::HoldPoint held(test::WithMaxTokens(3000), /*at=*/1);
  ServerOptions options;
  options.scheduler.parallel = 1;
  options.scheduler.queue_length = 1;
  options.scheduler.hold = held.Hook();
  options.max_tokens = 4000;
  std::unique_ptr<PiServer> server = test::StartServer(options, /*context=*/4096);
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  const std::string expected =
      test::ReplyText(test::Post(port, kCompletions, Greedy("Tom had a", 12)).Json());

  // A holds the only slot (held at its first token); B waits in the queue; C finds the queue full:
  // 503 at once. When A's client leaves, B runs and gets its answer.
  json long_request = Greedy("Once upon a time", 3000);
  long_request["stream"] = true;
  std::atomic<bool> release_a{false};
  std::jthread a([&] {
    test::PostStream(port, kCompletions, long_request, [&](const json&) { return !release_a; });
  });
  ASSERT_TRUE(held.WaitUntilHeld());
  std::string b_text;
  std::jthread b([&] {
    b_text = test::ReplyText(test::Post(port, kCompletions, Greedy("Tom had a", 12)).Json());
  });
  ASSERT_TRUE(Eventually([&] { return server->stats().queued == 1; }));
  ExpectApiError(test::Post(port, kCompletions, Greedy("Hi", 4)), 503, "server_busy", "busy");
  // A's client leaves at its next event: let A generate one more token.
  release_a = true;
  held.MoveTo(2);
  a.join();
  b.join();
  EXPECT_EQ(b_text, expected);

  // D: queued behind a held request, its client gives up after 300 ms; the server drops it.
  held.MoveTo(1);
  release_a = false;
  std::jthread holder([&] {
    test::PostStream(port, kCompletions, long_request, [&](const json&) { return !release_a; });
  });
  ASSERT_TRUE(held.WaitUntilHeld());
  const int64_t finished_before = server->stats().finished;
  {
    httplib::Client impatient("127.0.0.1", port);
    impatient.set_read_timeout(std::chrono::milliseconds(300));
    const httplib::Result r =
        impatient.Post(kCompletions, Greedy("Hi", 4).dump(), "application/json");
    EXPECT_FALSE(r);  // timed out
  }
  EXPECT_TRUE(Eventually([&] {
    const SchedulerStats s = server->stats();
    return s.queued == 0 && s.finished == finished_before + 1;
  }));
  EXPECT_EQ(server->stats().busy_slots, 1);  // the holder still runs
  release_a = true;
  held.MoveTo(2);
  holder.join();
}

TEST(ServerTest, TheRequestTimeoutCutsAGeneration) {
  // Held at its 5th token, the generation can end only by its deadline.
  test::HoldPoint held(test::WithMaxTokens(4000), /*at=*/5);
  ServerOptions options;
  options.timeout_seconds = 0.2;
  options.max_tokens = 4000;
  options.scheduler.hold = held.Hook();
  std::unique_ptr<PiServer> server = test::StartServer(options, /*context=*/4096);
  ASSERT_NE(server, nullptr);
  const auto start = std::chrono::steady_clock::now();
  const json reply =
      test::Post(server->port(), kCompletions, Greedy("Once upon a time", 4000)).Json();
  const double seconds = test::SecondsSince(start);
  EXPECT_EQ(reply["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(reply["usage"]["completion_tokens"], 5);
  EXPECT_GE(seconds, 0.2);
  EXPECT_LT(seconds, 20.0);
}

TEST(ServerTest, ShutdownLetsRunningRequestsFinishAndRefusesNewOnes) {
  // A stream of 40 tokens is held at its 8th. The shutdown begins (with time enough); while it
  // waits for the stream, /health says so and a new request gets 503. Only then is the stream let
  // go: what it generates after its 8th token, it generates during the shutdown, and it ends whole.
  test::HoldPoint held(test::WithMaxTokens(40), /*at=*/8);
  ServerOptions options;
  options.scheduler.hold = held.Hook();
  const std::vector<std::string> pieces = test::GreedyPieces("Once upon a time", 40);
  std::unique_ptr<PiServer> server = test::StartServer(options);
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  json request = Greedy("Once upon a time", 40);
  request["stream"] = true;
  request["stream_options"] = {{"include_usage", true}};
  std::atomic<int> events{0};
  StreamReply running;
  std::jthread client([&] {
    running = test::PostStream(port, kCompletions, request, [&](const json&) {
      ++events;
      return true;
    });
  });
  ASSERT_TRUE(held.WaitUntilHeld());
  std::jthread stopper([&] { server->Shutdown(std::chrono::seconds(60)); });
  ASSERT_TRUE(Eventually([&] { return test::Get(port, "/health").status == 503; }));
  const HttpReply health = test::Get(port, "/health");
  ASSERT_EQ(health.status, 503) << health.body;
  EXPECT_EQ(health.Json()["status"], "shutting_down") << health.body;
  EXPECT_EQ(health.Json()["slots_busy"], 1) << health.body;
  ExpectApiError(test::Post(port, kCompletions, Greedy("Hi", 4)), 503, "server_busy",
                 "shutting down");
  const int events_before = events.load();
  held.Release();
  client.join();
  stopper.join();
  EXPECT_LE(events_before, 8);
  EXPECT_TRUE(running.done) << running.raw.substr(running.raw.size() -
                                                  std::min<size_t>(300, running.raw.size()));
  EXPECT_EQ(running.FinishReason(), "length");
  ASSERT_FALSE(running.events.empty());
  EXPECT_EQ(running.events.back()["usage"]["completion_tokens"], 40);
  EXPECT_EQ(running.Pieces(), pieces);
  // No longer listening.
  EXPECT_EQ(test::Get(port, "/health").status, -1);
}

TEST(ServerTest, ShutdownCutsWhatRunsPastTheGrace) {
  // Held at its 8th token, the stream cannot finish within a grace of 0: it is cut there, and ends
  // properly (finish "length", usage, [DONE]), with 8 tokens of its 40.
  test::HoldPoint held(test::WithMaxTokens(40), /*at=*/8);
  ServerOptions options;
  options.scheduler.hold = held.Hook();
  std::unique_ptr<PiServer> server = test::StartServer(options);
  ASSERT_NE(server, nullptr);
  json request = Greedy("Once upon a time", 40);
  request["stream"] = true;
  request["stream_options"] = {{"include_usage", true}};
  StreamReply cut;
  std::jthread client([&] { cut = test::PostStream(server->port(), kCompletions, request); });
  ASSERT_TRUE(held.WaitUntilHeld());
  server->Shutdown(std::chrono::milliseconds(0));
  client.join();
  EXPECT_TRUE(cut.done) << cut.raw;
  EXPECT_EQ(cut.FinishReason(), "length");
  ASSERT_FALSE(cut.events.empty());
  EXPECT_EQ(cut.events.back()["usage"]["completion_tokens"], 8);
  EXPECT_EQ(cut.Pieces().size(), 8u);
}

// Many requests over a few seconds from several clients: every one answered, no crash, and memory
// stays bounded (KV caches and threads are allocated up front; nothing grows per request).
TEST(ServerTest, BoundedLoad) {
  ServerOptions options;
  options.scheduler.parallel = 4;
  options.scheduler.queue_length = 32;
  std::unique_ptr<PiServer> server = test::StartServer(options);
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  constexpr int kClients = 8;
  auto run_clients = [&](double seconds, std::atomic<int>& ok, std::atomic<int>& failed,
                         std::atomic<int64_t>& tokens) {
    const auto until = std::chrono::steady_clock::now() +
                       std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                           std::chrono::duration<double>(seconds));
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back([&, c] {
        for (int i = 0; std::chrono::steady_clock::now() < until; ++i) {
          json request = {{"prompt", absl::StrCat("Story ", c, " part ", i)},
                          {"max_tokens", 24},
                          {"temperature", 0.8},
                          {"seed", c * 1000 + i}};
          if (i % 3 == 0) {
            request["stream"] = true;
            request["stream_options"] = {{"include_usage", true}};
            const StreamReply r = test::PostStream(port, kCompletions, request);
            if (r.status == 200 && r.done && !r.events.empty()) {
              ++ok;
              tokens += r.events.back()["usage"]["completion_tokens"].get<int64_t>();
            } else {
              ++failed;
            }
          } else {
            const HttpReply r = test::Post(port, kCompletions, request);
            if (r.status == 200) {
              ++ok;
              tokens += r.Json()["usage"]["completion_tokens"].get<int64_t>();
            } else {
              ++failed;
            }
          }
        }
      });
    }
    for (std::thread& t : clients) t.join();
  };
  std::atomic<int> ok{0}, failed{0};
  std::atomic<int64_t> tokens{0};
  run_clients(0.5, ok, failed, tokens);  // warm up: threads, allocator pools
  const uint64_t rss_before = test::ResidentBytes();
  ok = 0;
  failed = 0;
  tokens = 0;
  const auto start = std::chrono::steady_clock::now();
  run_clients(3.0, ok, failed, tokens);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const uint64_t rss_after = test::ResidentBytes();
  std::fprintf(stderr,
               "load: %d requests (%d failed) in %.2f s from %d clients: %.1f requests/s, %.0f "
               "generated tokens/s; RSS %.1f -> %.1f MiB\n",
               ok.load(), failed.load(), seconds, kClients, ok / seconds, tokens / seconds,
               rss_before / 1048576.0, rss_after / 1048576.0);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(ok.load(), kClients);
  EXPECT_LT(rss_after, rss_before + (16u << 20));
  EXPECT_EQ(test::Get(port, "/health").Json()["slots_busy"], 0);
}

}  // namespace
}  // namespace pinfer
