// pi-server's chat page and /props, over HTTP without a browser: the page's files are served (the
// bytes of the sources, embedded at build time), --no-webui turns them off, /props tells the
// model, context, FFN mode (dense, sparse, hybrid) and slots under the same API key rule as
// /v1/models.
#include <cstdint>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "gtest/gtest.h"
#include "runtime/app/server/pi_server.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/ffn_builder.h"
#include "runtime/exec/ffn_report.h"
#include "runtime/model/model.h"
#include "runtime/text/tokenizer.h"
#include "tests/runtime/test_models.h"
#include "tests/server/server_harness.h"

namespace pinfer {
namespace {

using nlohmann::json;

TEST(WebUiTest, ThePageAndItsFilesAreServedAsTheyAreInTheSources) {
  std::unique_ptr<PiServer> server = test::StartServer();
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  struct File {
    std::string path, source, content_type;
  };
  for (const File& file : {File{"/", "index.html", "text/html; charset=utf-8"},
                           File{"/app.js", "app.js", "text/javascript; charset=utf-8"},
                           File{"/style.css", "style.css", "text/css; charset=utf-8"}}) {
    SCOPED_TRACE(file.path);
    const test::HttpReply reply = test::Get(port, file.path);
    EXPECT_EQ(reply.status, 200);
    EXPECT_EQ(reply.content_type, file.content_type);
    EXPECT_EQ(reply.body, test::ReadRepoFile("runtime/app/server/webui/" + file.source));
  }
  const test::HttpReply page = test::Get(port, "/");
  EXPECT_NE(page.body.find("<meta name=\"viewport\""), std::string::npos);
  EXPECT_EQ(test::Get(port, "/index.html").status, 404);  // the page is "/" only
}

TEST(WebUiTest, NoWebUiLeavesThePageOutAndTheApiIn) {
  ServerOptions options;
  options.webui = false;
  std::unique_ptr<PiServer> server = test::StartServer(options);
  ASSERT_NE(server, nullptr);
  for (const char* path : {"/", "/app.js", "/style.css"}) {
    const test::HttpReply reply = test::Get(server->port(), path);
    EXPECT_EQ(reply.status, 404) << path;
    EXPECT_EQ(reply.Json()["error"]["code"], "unknown_url") << reply.body;
  }
  EXPECT_EQ(test::Get(server->port(), "/props").status, 200);
  EXPECT_EQ(test::Get(server->port(), "/health").status, 200);
}

TEST(WebUiTest, TheNoWebUiFlagTurnsThePageOff) {
  for (const bool flag : {false, true}) {
    CLI::App app;
    ServerOptions options;
    AddServerFlags(app, options);
    std::vector<std::string> args;  // CLI11 parses a reversed list
    if (flag) args.push_back("--no-webui");
    app.parse(args);
    EXPECT_EQ(options.webui, !flag);
  }
}

TEST(WebUiTest, PropsTellTheModelContextSlotsAndLimits) {
  ServerOptions options;
  options.scheduler.parallel = 2;
  options.max_tokens = 100;
  options.model_name = "tiny";
  std::unique_ptr<PiServer> server = test::StartServer(options, /*context=*/64);
  ASSERT_NE(server, nullptr);
  const test::HttpReply reply = test::Get(server->port(), "/props");
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.content_type, "application/json");
  EXPECT_EQ(reply.Json(), (json{{"model", "tiny"},
                                {"context_length", 64},
                                {"ffn_mode", "dense"},
                                {"total_slots", 2},
                                {"max_tokens", 100}}));
  // /props answers GET (and HEAD) only, as the other GET endpoints.
  const test::HttpReply post = test::Post(server->port(), "/props", json::object());
  EXPECT_EQ(post.status, 405) << post.body;
}

TEST(WebUiTest, PropsNeedTheApiKeyAndThePageDoesNot) {
  ServerOptions options;
  options.api_key = "secret";
  std::unique_ptr<PiServer> server = test::StartServer(options);
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  const test::HttpReply refused = test::Get(port, "/props");
  EXPECT_EQ(refused.status, 401);
  EXPECT_EQ(refused.Json()["error"]["code"], "invalid_api_key") << refused.body;
  EXPECT_EQ(test::Get(port, "/props", {{"Authorization", "Bearer wrong"}}).status, 401);
  EXPECT_EQ(test::Get(port, "/props", {{"Authorization", "Bearer secret"}}).status, 200);
  // A browser opening the page cannot send a key: the page asks for it.
  EXPECT_EQ(test::Get(port, "/").status, 200);
  EXPECT_EQ(test::Get(port, "/app.js").status, 200);
}

// The mode /props reports is the executor's FFN: dense, sparse (exact gate-first selection on
// relu-llama-260k) or hybrid (a GPU part, here the CPU stand-in, over half of each layer).
TEST(WebUiTest, PropsTellHowTheFfnExecutes) {
  absl::StatusOr<std::unique_ptr<Model>> model =
      Model::Load(test::ConvertedModel(test::BundledModel::kReluLlama260K));
  ASSERT_TRUE(model.ok()) << model.status();
  absl::StatusOr<Tokenizer> tokenizer = Tokenizer::Create(*(*model)->vocabulary());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const int64_t n_ff = (*model)->config().n_ff;
  std::vector<int32_t> hot(static_cast<size_t>(n_ff / 2));
  std::iota(hot.begin(), hot.end(), 0);

  FfnSetup dense;
  FfnSetup sparse;
  sparse.exact = true;
  FfnSetup hybrid;
  hybrid.gpu_neurons.assign(static_cast<size_t>((*model)->config().n_layers), hot);
  struct Case {
    const char* mode;
    const FfnSetup* setup;
  };
  for (const Case& c : {Case{"dense", &dense}, Case{"sparse", &sparse}, Case{"hybrid", &hybrid}}) {
    SCOPED_TRACE(c.mode);
    Executor executor(**model);
    absl::StatusOr<std::vector<std::unique_ptr<LayerFfn>>> layers =
        BuildFfnLayers(**model, *c.setup);
    ASSERT_TRUE(layers.ok()) << layers.status();
    ASSERT_TRUE(executor.SetFfnLayers(*std::move(layers)).ok());
    EXPECT_STREQ(FfnMode(executor), c.mode);
    ServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.log_requests = false;
    SessionOptions session;
    session.context_length = 32;
    absl::StatusOr<std::unique_ptr<PiServer>> server =
        PiServer::Create(executor, *tokenizer, session, options);
    ASSERT_TRUE(server.ok()) << server.status();
    ASSERT_TRUE((*server)->Start().ok());
    const test::HttpReply reply = test::Get((*server)->port(), "/props");
    ASSERT_EQ(reply.status, 200) << reply.body;
    EXPECT_EQ(reply.Json()["ffn_mode"], c.mode) << reply.body;
    (*server)->Shutdown(std::chrono::milliseconds(0));
  }
}

}  // namespace
}  // namespace pinfer
