// The pi-server program: --help, one-line errors for bad flags, and real runs: it listens on a
// free port, requires the API key ($PINFER_API_KEY), names the model --alias, and on SIGTERM lets
// the request in flight finish within --shutdown-grace (or cuts it after), stops listening and
// exits 0.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "format/strings.h"
#include "gtest/gtest.h"
#include "runtime/common/cli_common.h"
#include "tests/runtime/test_models.h"
#include "tests/server/server_harness.h"
#include "tests/server/server_process.h"

namespace pinfer {
namespace {

using nlohmann::json;
using test::ServerProcess;

test::ProgramResult PiServer(const std::vector<std::string>& args) {
  return test::RunProgram(PI_SERVER_PATH, args);
}

void ExpectOneLineError(const test::ProgramResult& r, const char* mention) {
  EXPECT_EQ(r.exit_code, 1) << r.err;
  ASSERT_TRUE(absl::EndsWith(r.err, "\n")) << r.err;
  const std::string_view err = std::string_view(r.err).substr(0, r.err.size() - 1);
  const std::string_view last = err.substr(err.rfind('\n') + 1);
  EXPECT_TRUE(absl::StartsWith(Sv(last), "pi-server: error: ")) << r.err;
  EXPECT_TRUE(absl::StrContains(Sv(last), mention)) << r.err << " lacks " << mention;
}

TEST(PiServerCliTest, HelpShowsExamplesAndDefaults) {
  const test::ProgramResult r = PiServer({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* text :
       {"pi-server -m stories260K.pi", "curl http://127.0.0.1:8080/v1/", "--parallel", "--api-key",
        "--max-body", "--max-tokens", "--timeout", "--queue", "chatml when the model records none",
        "-c,--ctx-size", "127.0.0.1", "8080", "--max-connections", "--read-timeout",
        "$PINFER_API_KEY", "keeps the key out of ps", "--strict-model",
        "--batch-tokens"}) {
    EXPECT_TRUE(absl::StrContains(r.out, text)) << "--help lacks " << text << "\n" << r.out;
  }
}

TEST(PiServerCliTest, BadFlagsAreOneLine) {
  const std::string model = test::StoriesPath();
  ExpectOneLineError(PiServer({"--port", "8080"}), "--model");
  ExpectOneLineError(PiServer({"-m", model, "--parallel", "0"}), "--parallel");
  ExpectOneLineError(PiServer({"-m", model, "--port", "70000"}), "--port");
  ExpectOneLineError(PiServer({"-m", model, "--chat-template", "zephyr"}), "--chat-template");
  ExpectOneLineError(PiServer({"-m", model, "--max-body", "12Q"}), "--max-body");
  ExpectOneLineError(PiServer({"-m", model, "--timeout", "0"}), "--timeout");
  ExpectOneLineError(PiServer({"-m", model, "-t", "0"}), "-t");
  ExpectOneLineError(PiServer({"-m", model, "--cache-type", "q4_0"}),
                     "--cache-type must be f32, f16 or q8_0, not 'q4_0'");
  ExpectOneLineError(PiServer({"-m", test::ScratchDir() + "/missing.pi"}), "missing.pi");
  ExpectOneLineError(PiServer({"-m", model, "--max-connections", "20"}), "--max-connections");
  ExpectOneLineError(PiServer({"-m", model, "--read-timeout", "0"}), "--read-timeout");
  // Every slot's KV cache counts against the memory available, and the refusal says so.
  ExpectOneLineError(PiServer({"-m", model, "-c", "1000000000", "--parallel", "2"}),
                     "2 sequences of 1000000000 tokens need ");
  ExpectOneLineError(PiServer({"-m", model, "--timeout", "nan"}), "--timeout");
  // An empty key would turn authentication off: from the flag and from the environment alike.
  // (Under `timeout`: a server that took them would run until killed.)
  ExpectOneLineError(
      test::RunProgram("timeout", {"20", PI_SERVER_PATH, "-m", model, "--api-key", ""}),
      "--api-key");
  ExpectOneLineError(
      test::RunProgram("timeout", {"20", "env", "PINFER_API_KEY=", PI_SERVER_PATH, "-m", model}),
      "PINFER_API_KEY");
  ExpectOneLineError(PiServer({"-m", model, "--api-key", "two words"}), "--api-key");
  ExpectOneLineError(PiServer({"-m", model, "--batch-tokens", "0"}), "--batch-tokens");
  ExpectOneLineError(PiServer({"-m", model, "--batch-tokens", "many"}), "--batch-tokens");
  ExpectOneLineError(PiServer({"-m", model, "--batch-tokens", "100000"}), "--batch-tokens");
  ExpectOneLineError(PiServer({"-m", model, "--batch-tokens", "2", "--parallel", "4"}),
                     "--batch-tokens must be at least --parallel (4)");
}

// The KV memory at start, in one line: the slots, the context of each, and the bytes of all their
// KV caches (what an in-process server with the same slots reports).
TEST(PiServerCliTest, TheStartLogTellsTheSlotsTheirContextAndTheKvMemory) {
  ServerProcess server(
      {"-m", test::StoriesPath(), "--port", "0", "-t", "1", "-c", "64", "--parallel", "3"});
  ASSERT_GT(server.WaitForPort(), 0) << server.Log();
  ServerOptions three;
  three.scheduler.parallel = 3;
  const uint64_t kv_bytes = test::StartServer(three, /*context=*/64)->kv_cache_bytes();
  ServerOptions one;
  EXPECT_EQ(kv_bytes, 3 * test::StartServer(one, /*context=*/64)->kv_cache_bytes());
  const std::string line = absl::StrCat("pi-server: 3 slots of 64 tokens each, KV cache ",
                                        FormatBytes(kv_bytes), " in all\n");
  EXPECT_TRUE(absl::StrContains(server.Log(), line)) << server.Log() << " lacks " << line;
  server.Signal(SIGTERM);
  EXPECT_EQ(server.WaitForExit(), 0) << server.Log();
}

TEST(PiServerCliTest, ServesWithAKeyAndAnAlias) {
  // The key from the environment, as --help advises; the model's name from --alias, checked in
  // each request (--strict-model).
  ServerProcess server({"-m", test::StoriesPath(), "--port", "0", "--alias", "tiny-tales", "-t",
                        "1", "--strict-model"},
                       {"PINFER_API_KEY=k3y"});
  const int port = server.WaitForPort();
  ASSERT_GT(port, 0) << server.Log();
  const std::string log = server.Log();
  EXPECT_TRUE(absl::StrContains(log, "chat template chatml (default")) << log;
  EXPECT_TRUE(absl::StrContains(log, "API key required")) << log;
  EXPECT_TRUE(absl::StrContains(log, "(model \"tiny-tales\")")) << log;
  EXPECT_TRUE(absl::StrContains(log, "; --strict-model")) << log;

  // Every endpoint but /health wants the key: none or a wrong one is a 401.
  const httplib::Headers key = {{"Authorization", "Bearer k3y"}};
  const httplib::Headers wrong = {{"Authorization", "Bearer k3y-not"}};
  EXPECT_EQ(test::Get(port, "/health").status, 200);
  EXPECT_EQ(test::Get(port, "/v1/models").status, 401);
  EXPECT_EQ(test::Get(port, "/v1/models", wrong).status, 401);
  const json greedy = {{"prompt", "Once upon a time"},
                       {"max_tokens", 12},
                       {"temperature", 0},
                       {"model", "tiny-tales"}};
  const test::HttpReply no_key = test::Post(port, "/v1/completions", greedy);
  EXPECT_EQ(no_key.status, 401) << no_key.body;
  EXPECT_EQ(no_key.Json()["error"]["code"], "invalid_api_key") << no_key.body;
  EXPECT_EQ(test::Post(port, "/v1/completions", greedy, wrong).status, 401);

  // The alias is the model's id, and the "model" of every answer.
  const test::HttpReply models = test::Get(port, "/v1/models", key);
  ASSERT_EQ(models.status, 200) << models.body;
  ASSERT_EQ(models.Json()["data"].size(), 1u) << models.body;
  EXPECT_EQ(models.Json()["data"][0]["id"], "tiny-tales") << models.body;
  EXPECT_EQ(test::Get(port, "/v1/models/tiny-tales", key).status, 200);
  EXPECT_EQ(test::Get(port, "/v1/models/stories260K", key).status, 404);
  const test::HttpReply reply = test::Post(port, "/v1/completions", greedy, key);
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.Json()["model"], "tiny-tales") << reply.body;
  EXPECT_TRUE(absl::StartsWith(test::ReplyText(reply.Json()), ", there was a little girl"))
      << reply.body;
  json streamed = greedy;
  streamed["stream"] = true;
  const test::StreamReply stream = test::PostStream(port, "/v1/completions", streamed, {}, key);
  ASSERT_TRUE(stream.done) << stream.raw;
  for (const json& e : stream.events) EXPECT_EQ(e["model"], "tiny-tales") << e.dump();
  // The file's name is not the model's any more, and --strict-model refuses it.
  json by_file_name = greedy;
  by_file_name["model"] = "stories260K";
  const test::HttpReply unknown = test::Post(port, "/v1/completions", by_file_name, key);
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  EXPECT_EQ(unknown.Json()["error"]["code"], "model_not_found") << unknown.body;
  server.Signal(SIGTERM);
  EXPECT_EQ(server.WaitForExit(), 0) << server.Log();
}

// On SIGTERM while a stream runs. The stream (40 tokens) runs on held-pi-server, which holds it at
// its 8th token until the test sends SIGUSR1: it is running when the signal comes, whatever the
// speed of the machine, and the two outcomes differ in what the client receives.
json HeldStreamRequest() {
  return {{"prompt", "Once upon a time"},
          {"max_tokens", 40},
          {"temperature", 0},
          {"stream", true},
          {"stream_options", {{"include_usage", true}}}};
}

TEST(PiServerCliTest, OnSigtermARunningStreamFinishesWithinTheGrace) {
  const std::vector<std::string> expected = test::GreedyPieces("Once upon a time", 40);
  ServerProcess server(
      {"8", "-m", test::StoriesPath(), "--port", "0", "--shutdown-grace", "60", "-t", "1"}, {},
      HELD_PI_SERVER_PATH);
  const int port = server.WaitForPort();
  ASSERT_GT(port, 0) << server.Log();
  test::StreamReply stream;
  std::jthread client(
      [&] { stream = test::PostStream(port, "/v1/completions", HeldStreamRequest()); });
  ASSERT_TRUE(server.WaitForLog("holding a generation at 8 tokens")) << server.Log();
  server.Signal(SIGTERM);
  ASSERT_TRUE(server.WaitForLog("SIGTERM: shutting down")) << server.Log();
  // Shutting down, with the stream still running: /health says so, a new request gets 503.
  const test::HttpReply health = test::Get(port, "/health");
  ASSERT_EQ(health.status, 503) << health.body;
  EXPECT_EQ(health.Json()["status"], "shutting_down") << health.body;
  EXPECT_EQ(health.Json()["slots_busy"], 1) << health.body;
  const test::HttpReply refused = test::Post(
      port, "/v1/completions", {{"prompt", "Hi"}, {"max_tokens", 4}, {"temperature", 0}});
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_TRUE(absl::StrContains(refused.body, "shutting down")) << refused.body;
  // Let it go: it ends whole within the grace, then the process exits 0.
  server.Signal(SIGUSR1);
  client.join();
  EXPECT_EQ(server.WaitForExit(), 0) << server.Log();
  EXPECT_TRUE(stream.done) << stream.raw;
  EXPECT_TRUE(absl::EndsWith(stream.raw, "data: [DONE]\n\n")) << stream.raw;
  EXPECT_EQ(stream.FinishReason(), "length");
  EXPECT_EQ(stream.Pieces(), expected);
  ASSERT_FALSE(stream.events.empty());
  EXPECT_EQ(stream.events.back()["usage"]["completion_tokens"], 40);
  EXPECT_EQ(test::Get(port, "/health").status, -1);
  const std::string log = server.Log();
  EXPECT_TRUE(absl::StrContains(log, "POST /v1/completions: 200 stream, 5 prompt + 40 generated"))
      << log;
  EXPECT_TRUE(absl::StrContains(log, "stopped after")) << log;
}

TEST(PiServerCliTest, OnSigtermARunningStreamIsCutAfterTheGrace) {
  // A grace of 0: the held stream is cut at its 8th token. It still ends properly (the finish
  // event, usage, [DONE]); that it was cut shows in its 8 tokens of 40. Meanwhile 30 clients (more
  // than the 25 threads of a fixed pool: 1 slot + 16 queued + 8) are sending their requests a
  // line at a time: they are told 503, and the process exits 0 within a few seconds.
  const std::vector<std::string> expected = test::GreedyPieces("Once upon a time", 8);
  ServerProcess server(
      {"8", "-m", test::StoriesPath(), "--port", "0", "--shutdown-grace", "0", "-t", "1"}, {},
      HELD_PI_SERVER_PATH);
  const int port = server.WaitForPort();
  ASSERT_GT(port, 0) << server.Log();
  test::StreamReply stream;
  std::jthread client(
      [&] { stream = test::PostStream(port, "/v1/completions", HeldStreamRequest()); });
  ASSERT_TRUE(server.WaitForLog("holding a generation at 8 tokens")) << server.Log();
  std::vector<std::unique_ptr<test::RawConnection>> slow;
  for (int i = 0; i < 30; ++i) {
    slow.push_back(std::make_unique<test::RawConnection>(port));
    slow.back()->Send("POST /v1/completions HTTP/1.1\r\nHost: test\r\n");
  }
  std::atomic<bool> stop_dripping{false};
  std::jthread dripper([&] {
    for (int i = 0; i < 100 && !stop_dripping; ++i) {  // 10 s at most
      for (auto& c : slow) c->Send("X-Drip: 1\r\n");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  // The server accepts connections in order: once a later one is answered, the 30 are its.
  EXPECT_EQ(test::Get(port, "/health").status, 200);
  const auto signalled = std::chrono::steady_clock::now();
  server.Signal(SIGTERM);
  client.join();
  EXPECT_EQ(server.WaitForExit(), 0) << server.Log();
  const double exit_seconds = test::SecondsSince(signalled);
  stop_dripping = true;
  dripper.join();
  std::fprintf(stderr, "SIGTERM with a grace of 0 and 30 slow clients: exited in %.2f s\n",
               exit_seconds);
  EXPECT_LT(exit_seconds, 3.0);
  for (auto& c : slow) {
    EXPECT_EQ(test::RawStatus(c->ReadResponse(std::chrono::milliseconds(1000))), 503);
  }
  EXPECT_TRUE(stream.done) << stream.raw;
  EXPECT_TRUE(absl::EndsWith(stream.raw, "data: [DONE]\n\n")) << stream.raw;
  EXPECT_EQ(stream.FinishReason(), "length");
  EXPECT_EQ(stream.Pieces(), expected);
  ASSERT_FALSE(stream.events.empty());
  EXPECT_EQ(stream.events.back()["usage"]["completion_tokens"], 8);
  EXPECT_EQ(test::Get(port, "/health").status, -1);
  const std::string log = server.Log();
  EXPECT_TRUE(absl::StrContains(log, "SIGTERM: shutting down")) << log;
  EXPECT_TRUE(absl::StrContains(log, "POST /v1/completions: 200 stream, 5 prompt + 8 generated"))
      << log;
}

// pi-server runs the model as pi-run does with the same flags: sparse with the predictor beside the
// model, hybrid with a plan solved for a VRAM budget (the GPU part on the CPU without a GPU).
TEST(PiServerCliTest, SparseAndHybridExecutionAnswerAsPiRun) {
  const test::ModelWithPredictor& relu = test::ReluModelWithPredictor();
  for (const std::vector<std::string>& mode :
       {std::vector<std::string>{}, std::vector<std::string>{"--vram-budget", "3900K"}}) {
    SCOPED_TRACE(mode.empty() ? "sparse" : "hybrid");
    std::vector<std::string> run_args = {
        "-m", relu.model, "-p", "Once upon a time", "-n", "24", "--temp", "0", "-t", "1"};
    run_args.insert(run_args.end(), mode.begin(), mode.end());
    const test::ProgramResult run = test::RunProgram(PI_RUN_PATH, run_args);
    ASSERT_EQ(run.exit_code, 0) << run.err;
    ASSERT_TRUE(absl::StartsWith(run.out, "Once upon a time")) << run.out;
    const std::string expected = run.out.substr(16, run.out.size() - 17);  // minus the prompt, \n

    std::vector<std::string> args = {"-m", relu.model, "--port", "0", "-t", "1"};
    args.insert(args.end(), mode.begin(), mode.end());
    ServerProcess server(args);
    const int port = server.WaitForPort();
    ASSERT_GT(port, 0) << server.Log();
    const std::string log = server.Log();
    EXPECT_TRUE(absl::StrContains(log, relu.predictor)) << log;
    if (!mode.empty()) {
      EXPECT_TRUE(absl::StrContains(log, "relu.plan-3900K.pi")) << log;
    }
    const json greedy = {{"prompt", "Once upon a time"}, {"max_tokens", 24}, {"temperature", 0}};
    const test::HttpReply reply = test::Post(port, "/v1/completions", greedy);
    ASSERT_EQ(reply.status, 200) << reply.body;
    EXPECT_EQ(test::ReplyText(reply.Json()), expected);
    server.Signal(SIGTERM);
    EXPECT_EQ(server.WaitForExit(), 0) << server.Log();
  }
}

TEST(PiServerCliTest, APortInUseIsAnErrorAndSigintStopsAnIdleServer) {
  ServerProcess server({"-m", test::StoriesPath(), "--port", "0", "--quiet"});
  const int port = server.WaitForPort();
  ASSERT_GT(port, 0) << server.Log();
  EXPECT_EQ(test::Get(port, "/health").status, 200);
  // A second server on the same port: one clear line (under `timeout`: a server that could bind
  // would run until killed).
  ExpectOneLineError(test::RunProgram("timeout", {"60", PI_SERVER_PATH, "-m", test::StoriesPath(),
                                                  "--port", std::to_string(port)}),
                     "cannot listen");
  server.Signal(SIGINT);
  EXPECT_EQ(server.WaitForExit(), 0) << server.Log();
  EXPECT_TRUE(absl::StrContains(server.Log(), "SIGINT: shutting down")) << server.Log();
}

}  // namespace
}  // namespace pinfer
