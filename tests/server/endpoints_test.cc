// pi-server's endpoints beside the completions, in process over the bundled stories260K:
// /tokenize and /detokenize (llama-server's bodies, and a 400 for bad input), any model name
// served without --strict-model, /props with the busy slots, and /metrics in Prometheus's text
// format, its values moving as requests are served.
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/server/server_harness.h"

namespace pinfer {
namespace {

using nlohmann::json;
using test::ExpectApiError;
using test::HttpReply;

constexpr char kCompletions[] = "/v1/completions";

json Greedy(const std::string& prompt, int max_tokens) {
  return json{{"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}};
}

const Tokenizer& Tok() { return *test::StoriesRuntime().tokenizer; }

TEST(TokenizeTest, TokenizeAndDetokenizeAnswerAsLlamaServer) {
  std::unique_ptr<PiServer> server = test::StartServer();
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  const std::string text = "Once upon a time";
  const std::vector<int32_t> expected = Tok().Encode(text, /*add_special=*/false);
  ASSERT_GT(expected.size(), 1u);

  // add_special defaults to false, as llama-server's: no BOS.
  const HttpReply plain = test::Post(port, "/tokenize", {{"content", text}});
  ASSERT_EQ(plain.status, 200) << plain.body;
  EXPECT_EQ(plain.content_type, "application/json");
  EXPECT_EQ(plain.Json(), (json{{"tokens", expected}})) << plain.body;
  const HttpReply with_bos =
      test::Post(port, "/tokenize", {{"content", text}, {"add_special", true}});
  ASSERT_EQ(with_bos.status, 200) << with_bos.body;
  std::vector<int32_t> bos_then = {Tok().bos()};
  bos_then.insert(bos_then.end(), expected.begin(), expected.end());
  EXPECT_EQ(with_bos.Json()["tokens"], json(bos_then)) << with_bos.body;
  // Special pieces written in the text are recognised, as llama-server's parse_special.
  const HttpReply special = test::Post(port, "/tokenize", {{"content", "<s>Once"}});
  ASSERT_EQ(special.status, 200) << special.body;
  EXPECT_EQ(special.Json()["tokens"][0], Tok().bos()) << special.body;

  // with_pieces: each token's text; one that is not valid UTF-8 as its bytes. "中" is not in the
  // vocabulary of 512 pieces: it falls back to its three byte tokens.
  const HttpReply pieces =
      test::Post(port, "/tokenize", {{"content", text + " \xE4\xB8\xAD"}, {"with_pieces", true}});
  ASSERT_EQ(pieces.status, 200) << pieces.body;
  const json list = pieces.Json()["tokens"];
  ASSERT_EQ(list.size(), expected.size() + 4) << pieces.body;  // + "▁", <0xE4>, <0xB8>, <0xAD>
  std::string joined;
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(list[i]["id"], expected[i]) << pieces.body;
    ASSERT_TRUE(list[i]["piece"].is_string()) << pieces.body;
    joined += list[i]["piece"].get<std::string>();
  }
  EXPECT_EQ(joined, " " + text);  // SentencePiece's leading space
  const size_t first_byte = expected.size() + 1;
  EXPECT_EQ(list[first_byte]["piece"], json::array({0xE4})) << pieces.body;
  EXPECT_EQ(list[first_byte + 1]["piece"], json::array({0xB8})) << pieces.body;
  EXPECT_EQ(list[first_byte + 2]["piece"], json::array({0xAD})) << pieces.body;

  // /detokenize joins the pieces, special ones included, as llama-server does; so it takes back
  // what /tokenize gave, the leading space with it.
  const HttpReply back = test::Post(port, "/detokenize", {{"tokens", expected}});
  ASSERT_EQ(back.status, 200) << back.body;
  EXPECT_EQ(back.Json(), (json{{"content", " " + text}})) << back.body;
  EXPECT_EQ(test::Post(port, "/detokenize", {{"tokens", bos_then}}).Json()["content"],
            "<s> " + text);
  const json bytes = {list[first_byte]["id"], list[first_byte + 1]["id"],
                      list[first_byte + 2]["id"]};
  const HttpReply character = test::Post(port, "/detokenize", {{"tokens", bytes}});
  EXPECT_EQ(character.Json()["content"], "\xE4\xB8\xAD") << character.body;
  EXPECT_EQ(test::Post(port, "/detokenize", {{"tokens", json::array()}}).Json()["content"], "");
}

TEST(TokenizeTest, BadInputIsA400WithTheReason) {
  std::unique_ptr<PiServer> server = test::StartServer();
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  ExpectApiError(test::Post(port, "/tokenize", {{"content", 5}}), 400, "",
                 "'content' must be a string");
  ExpectApiError(test::Post(port, "/tokenize", {{"content", {"a", "b"}}}), 400, "",
                 "'content' must be a string");
  ExpectApiError(test::Post(port, "/tokenize", {{"text", "Hi"}}), 400, "", "'content' is required");
  ExpectApiError(test::Post(port, "/tokenize", {{"content", "Hi"}, {"add_special", "yes"}}), 400,
                 "", "'add_special' must be true or false");
  ExpectApiError(test::Post(port, "/tokenize", {{"content", "Hi"}, {"with_pieces", 1}}), 400, "",
                 "'with_pieces'");
  ExpectApiError(test::Post(port, "/tokenize", json::array({1})), 400, "", "JSON object");
  ExpectApiError(test::PostRaw(port, "/tokenize", "{\"content\": \"Hi"), 400, "invalid_json",
                 "not valid JSON");

  ExpectApiError(test::Post(port, "/detokenize", {{"tokens", "1 2"}}), 400, "",
                 "'tokens' must be a list of token ids");
  ExpectApiError(test::Post(port, "/detokenize", {{"tokens", {1, 512}}}), 400, "",
                 "token id 512 (tokens[1]) is outside the vocabulary of 512 tokens");
  ExpectApiError(test::Post(port, "/detokenize", {{"tokens", {-1}}}), 400, "",
                 "outside the vocabulary");
  ExpectApiError(test::PostRaw(port, "/detokenize", "{\"tokens\": [18446744073709551615]}"), 400,
                 "", "outside the vocabulary");
  ExpectApiError(test::Post(port, "/detokenize", {{"tokens", {1.5}}}), 400, "",
                 "'tokens[0]' must be an integer token id");
  ExpectApiError(test::Post(port, "/detokenize", {{"tokens", {"Hi"}}}), 400, "", "'tokens[0]'");
  ExpectApiError(test::Post(port, "/detokenize", json::object()), 400, "", "'tokens' is required");
  ExpectApiError(test::PostRaw(port, "/detokenize", "[1, 2"), 400, "invalid_json",
                 "not valid JSON");
  // They answer POST only.
  const HttpReply get = test::Get(port, "/tokenize");
  ExpectApiError(get, 405, "method_not_allowed", "/tokenize answers POST, not GET");
  EXPECT_EQ(get.Header("Allow"), "POST");
}

TEST(TokenizeTest, TheNewEndpointsNeedTheApiKey) {
  ServerOptions options;
  options.api_key = "s3cret";
  std::unique_ptr<PiServer> server = test::StartServer(options);
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  const httplib::Headers key = {{"Authorization", "Bearer s3cret"}};
  const httplib::Headers wrong = {{"Authorization", "Bearer guess"}};
  ExpectApiError(test::Post(port, "/tokenize", {{"content", "Hi"}}), 401, "invalid_api_key",
                 "no API key");
  ExpectApiError(test::Post(port, "/detokenize", {{"tokens", {1}}}, wrong), 401, "invalid_api_key",
                 "incorrect API key");
  ExpectApiError(test::Get(port, "/metrics"), 401, "invalid_api_key", "no API key");
  EXPECT_EQ(test::Post(port, "/tokenize", {{"content", "Hi"}}, key).status, 200);
  EXPECT_EQ(test::Post(port, "/detokenize", {{"tokens", {1}}}, key).status, 200);
  EXPECT_EQ(test::Get(port, "/metrics", key).status, 200);
}

// Clients often send a fixed model name ("gpt-4o"): one model serves them all, as llama-server
// does. (--strict-model refuses them: ServerTest.BadRequestsGetJsonErrors and the pi-server test.)
TEST(ModelNameTest, AnyNameIsServedWithoutStrictModel) {
  std::unique_ptr<PiServer> server = test::StartServer();
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  const std::string expected = absl::StrJoin(test::GreedyPieces("Once upon a time", 8), "");
  for (const char* name : {"gpt-4o", "", "stories260K-other"}) {
    json request = Greedy("Once upon a time", 8);
    request["model"] = name;
    const HttpReply reply = test::Post(port, kCompletions, request);
    ASSERT_EQ(reply.status, 200) << name << ": " << reply.body;
    EXPECT_EQ(test::ReplyText(reply.Json()), expected) << name;
    EXPECT_EQ(reply.Json()["model"], server->model_name()) << reply.body;
  }
  const HttpReply chat = test::Post(port, "/v1/chat/completions",
                                    {{"model", "gpt-3.5-turbo"},
                                     {"messages", {{{"role", "user"}, {"content", "Hi"}}}},
                                     {"max_tokens", 4}});
  EXPECT_EQ(chat.status, 200) << chat.body;
  json streamed = Greedy("Once upon a time", 8);
  streamed["model"] = "gpt-4o";
  streamed["stream"] = true;
  const test::StreamReply stream = test::PostStream(port, kCompletions, streamed);
  EXPECT_EQ(stream.status, 200) << stream.raw;
  EXPECT_TRUE(stream.done) << stream.raw;
  EXPECT_EQ(stream.Text(), expected);
}

TEST(PropsTest, PropsTellTheModelTheContextPerSlotAndTheBusySlots) {
  test::HoldPoint held(test::WithMaxTokens(20), /*at=*/1);
  ServerOptions options;
  options.scheduler.parallel = 2;
  options.scheduler.hold = held.Hook();
  options.model_name = "tiny";
  std::unique_ptr<PiServer> server = test::StartServer(options, /*context=*/64);
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  const json idle = test::Get(port, "/props").Json();
  EXPECT_EQ(idle["model"], "tiny") << idle.dump();
  EXPECT_EQ(idle["context_length"], 64) << idle.dump();
  EXPECT_EQ(idle["total_slots"], 2) << idle.dump();
  EXPECT_EQ(idle["slots_busy"], 0) << idle.dump();
  std::jthread client([&] { test::Post(port, kCompletions, Greedy("Once upon a time", 20)); });
  ASSERT_TRUE(held.WaitUntilHeld());
  const json busy = test::Get(port, "/props").Json();
  EXPECT_EQ(busy["slots_busy"], 1) << busy.dump();
  EXPECT_EQ(busy["total_slots"], 2) << busy.dump();
  held.Release();
}

// A Prometheus exposition, checked line by line: "# HELP name text", "# TYPE name counter|gauge"
// before the samples of that name, and samples "name{label="value",...} number". Returns each
// sample's value by its name and labels as written ("name" or "name{a=\"b\"}"); a test failure
// for any line that is none of these.
std::map<std::string, double> ParseExposition(const std::string& text) {
  static const std::regex kHelp(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*)");
  static const std::regex kType(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge))");
  static const std::regex kSample(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")"
      R"((,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*\})? (-?[0-9]+(\.[0-9]+)?))");
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;
  std::set<std::string> helped;
  EXPECT_TRUE(absl::EndsWith(text, "\n"));
  std::istringstream lines(text);
  std::string line;
  std::smatch m;
  while (std::getline(lines, line)) {
    if (std::regex_match(line, m, kHelp)) {
      helped.insert(m[1]);
    } else if (std::regex_match(line, m, kType)) {
      EXPECT_TRUE(helped.contains(m[1])) << "no HELP before " << line;
      EXPECT_FALSE(types.contains(m[1])) << "a second TYPE: " << line;
      types[m[1]] = m[2];
    } else if (std::regex_match(line, m, kSample)) {
      const std::string name = m[1];
      EXPECT_TRUE(types.contains(name)) << "no TYPE before " << line;
      if (types[name] == "counter") EXPECT_TRUE(absl::EndsWith(name, "_total")) << line;
      double value = 0;
      EXPECT_TRUE(absl::SimpleAtod(std::string(m[4]), &value)) << line;
      EXPECT_FALSE(samples.contains(name + std::string(m[2]))) << "twice: " << line;
      samples[name + std::string(m[2])] = value;
    } else {
      ADD_FAILURE() << "not a line of the exposition format: '" << line << "'";
    }
  }
  return samples;
}

std::string Requests(const std::string& endpoint, int status) {
  return absl::StrCat("pinfer_requests_total{endpoint=\"", endpoint, "\",status=\"", status, "\"}");
}

TEST(MetricsTest, ThePrometheusCountersMoveAsRequestsAreServed) {
  test::HoldPoint held(test::WithMaxTokens(20), /*at=*/1);
  ServerOptions options;
  options.scheduler.parallel = 1;
  options.scheduler.hold = held.Hook();
  std::unique_ptr<PiServer> server = test::StartServer(options);
  ASSERT_NE(server, nullptr);
  const int port = server->port();

  const HttpReply first = test::Get(port, "/metrics");
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.content_type, "text/plain; version=0.0.4; charset=utf-8");
  std::map<std::string, double> m = ParseExposition(first.body);
  EXPECT_FALSE(m.contains(Requests("/v1/completions", 200))) << first.body;
  EXPECT_EQ(m["pinfer_generated_tokens_total"], 0) << first.body;
  EXPECT_EQ(m["pinfer_prompt_tokens_total"], 0) << first.body;
  EXPECT_EQ(m["pinfer_generation_tokens_per_second"], 0) << first.body;
  EXPECT_EQ(m["pinfer_slots_total"], 1) << first.body;
  EXPECT_EQ(m["pinfer_slots_busy"], 0) << first.body;
  EXPECT_EQ(m["pinfer_queue_depth"], 0) << first.body;
  for (const char* name : {"pinfer_prompt_cache_hits_total", "pinfer_prompt_cache_tokens_total"}) {
    EXPECT_TRUE(m.contains(name)) << name << "\n" << first.body;
  }

  // Two completions (one streamed), a refused one, an unknown path.
  const HttpReply a = test::Post(port, kCompletions, Greedy("Once upon a time", 8));
  ASSERT_EQ(a.status, 200) << a.body;
  json streamed = Greedy("The little dog", 6);
  streamed["stream"] = true;
  streamed["stream_options"] = {{"include_usage", true}};
  const test::StreamReply b = test::PostStream(port, kCompletions, streamed);
  ASSERT_TRUE(b.done) << b.raw;
  ExpectApiError(test::Post(port, kCompletions, {{"prompt", "Hi"}, {"temperature", 5}}), 400, "",
                 "'temperature'");
  EXPECT_EQ(test::Get(port, "/no/such/path").status, 404);
  EXPECT_EQ(test::Post(port, "/tokenize", {{"content", "Hi"}}).status, 200);
  const json& b_usage = b.events.back()["usage"];
  const int64_t generated = a.Json()["usage"]["completion_tokens"].get<int64_t>() +
                            b_usage["completion_tokens"].get<int64_t>();
  const int64_t prompt =
      a.Json()["usage"]["prompt_tokens"].get<int64_t>() + b_usage["prompt_tokens"].get<int64_t>();
  EXPECT_EQ(generated, 8 + 6);

  const HttpReply second = test::Get(port, "/metrics");
  m = ParseExposition(second.body);
  EXPECT_EQ(m[Requests("/v1/completions", 200)], 2) << second.body;
  EXPECT_EQ(m[Requests("/v1/completions", 400)], 1) << second.body;
  EXPECT_EQ(m[Requests("other", 404)], 1) << second.body;  // arbitrary paths make no series
  EXPECT_EQ(m[Requests("/tokenize", 200)], 1) << second.body;
  EXPECT_EQ(m[Requests("/metrics", 200)], 1) << second.body;  // the first scrape
  EXPECT_EQ(m["pinfer_generated_tokens_total"], generated) << second.body;
  // Every prompt token was evaluated, or taken from a slot's cache.
  EXPECT_EQ(m["pinfer_prompt_tokens_total"] + m["pinfer_prompt_cache_tokens_total"], prompt)
      << second.body;
  EXPECT_GT(m["pinfer_generation_tokens_per_second"], 0) << second.body;

  // One generation holds the slot, another waits for it: the gauges say so.
  std::jthread running([&] { test::Post(port, kCompletions, Greedy("Once upon a time", 20)); });
  ASSERT_TRUE(held.WaitUntilHeld());
  std::jthread waiting([&] { test::Post(port, kCompletions, Greedy("Once upon a time", 20)); });
  for (int i = 0; i < 4000 && server->stats().queued == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  m = ParseExposition(test::Get(port, "/metrics").body);
  EXPECT_EQ(m["pinfer_slots_busy"], 1);
  EXPECT_EQ(m["pinfer_queue_depth"], 1);
  held.Release();
  running.join();
  waiting.join();
  m = ParseExposition(test::Get(port, "/metrics").body);
  EXPECT_EQ(m[Requests("/v1/completions", 200)], 4);
  EXPECT_EQ(m["pinfer_generated_tokens_total"], generated + 40);
  EXPECT_EQ(m["pinfer_slots_busy"], 0);
  EXPECT_EQ(m["pinfer_queue_depth"], 0);
  EXPECT_EQ(m[Requests("/metrics", 200)], 3);
}

}  // namespace
}  // namespace pinfer
