// pi-server's chat page and /props, over HTTP without a browser: the page's files are served (the
// bytes of the sources, embedded at build time), --no-webui turns them off, /props tells the
// model, context, FFN mode (dense, sparse, hybrid) and slots under the same API key rule as
// /v1/models.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "gtest/gtest.h"
#include "runtime/app/server/pi_server.h"
#include "runtime/exec/ffn_report.h"
#include "tests/runtime/test_models.h"
#include "tests/server/server_harness.h"
#include "tests/webui/ffn_server.h"

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
    EXPECT_NE(reply.body.find("\"unknown_url\""), std::string::npos) << reply.body;
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
                                {"slots_busy", 0},
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

// The page's paths answer GET only: another method gets 405 with Allow, as the API's paths do.
// Without the page (--no-webui) they are unknown: 404.
TEST(WebUiTest, ThePagesPathsAnswerGetOnly) {
  std::unique_ptr<PiServer> server = test::StartServer(ServerOptions{});
  ASSERT_NE(server, nullptr);
  const test::HttpReply post_page = test::Post(server->port(), "/", json::object());
  EXPECT_EQ(post_page.status, 405) << post_page.body;
  EXPECT_EQ(post_page.Header("Allow"), "GET, HEAD");
  EXPECT_EQ(post_page.Json()["error"]["code"], "method_not_allowed") << post_page.body;
  EXPECT_EQ(test::Post(server->port(), "/style.css", json::object()).status, 405);
  EXPECT_EQ(test::Post(server->port(), "/nothing.js", json::object()).status, 404);

  ServerOptions no_page;
  no_page.webui = false;
  std::unique_ptr<PiServer> bare = test::StartServer(no_page);
  ASSERT_NE(bare, nullptr);
  const test::HttpReply post_bare = test::Post(bare->port(), "/", json::object());
  EXPECT_EQ(post_bare.status, 404) << post_bare.body;
  EXPECT_EQ(post_bare.Json()["error"]["code"], "unknown_url") << post_bare.body;
}

// The mode /props reports is the executor's FFN: dense, sparse (exact gate-first selection on
// relu-llama-260k) or hybrid (a GPU part, here the CPU stand-in, over half of each layer).
TEST(WebUiTest, PropsTellHowTheFfnExecutes) {
  struct Case {
    const char* mode;
    std::function<FfnSetup(const Model&)> setup;
  };
  for (const Case& c : {Case{"dense", [](const Model&) { return FfnSetup{}; }},
                        Case{"sparse", [](const Model&) { return test::ExactSparseSetup(); }},
                        Case{"hybrid", test::HybridSetup}}) {
    SCOPED_TRACE(c.mode);
    test::FfnServer s = test::StartReluServer(c.setup);
    ASSERT_NE(s.server, nullptr);
    EXPECT_STREQ(FfnMode(*s.executor), c.mode);
    const test::HttpReply reply = test::Get(s.server->port(), "/props");
    ASSERT_EQ(reply.status, 200) << reply.body;
    EXPECT_EQ(reply.Json()["ffn_mode"], c.mode) << reply.body;
    EXPECT_EQ(reply.Json()["context_length"], 64) << reply.body;
  }
}

}  // namespace
}  // namespace pinfer
