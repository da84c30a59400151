// The chat page in headless Chromium, driven through chromedriver: a conversation streamed from
// the server equals the API's greedy answers, the stop button ends a reply (the server frees the
// slot and answers again), errors (a full queue, a missing API key) show as text, and the page fits
// a phone's screen; under a sparse FFN the page shows the mode. Screenshots are written beside
// the test binary. Skipped only when chromium or chromedriver is not installed.
#include <atomic>
#include <fstream>
#include <iostream>
#include <memory>
#include <regex>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "runtime/app/server/http_server.h"
#include "tests/server/server_harness.h"
#include "tests/webui/ffn_server.h"
#include "tests/webui/webdriver.h"

namespace pinfer {
namespace {

using nlohmann::json;
using test::Eventually;
using test::WebDriver;

constexpr char kSystem[] = "You tell short stories.";

// What the page shows, read from its DOM.
struct Page {
  WebDriver& driver;

  std::string State() { return Value("return document.body.dataset.state;"); }
  std::string Status() { return Value("return document.getElementById('status').textContent;"); }
  bool StatusIsError() {
    return driver.Execute("return document.getElementById('status').classList.contains('error');") ==
           true;
  }
  // The text of the last assistant message; "<none>" when there is none.
  std::string LastReply() {
    return Value(
        "const m = document.querySelectorAll('.msg.assistant');"
        "return m.length ? m[m.length - 1].textContent : '<none>';");
  }
  int Messages() {
    const json n = driver.Execute("return document.querySelectorAll('.msg').length;");
    return n.is_number() ? n.get<int>() : -1;
  }
  std::string Value(const std::string& script) {
    const json value = driver.Execute(script);
    return value.is_string() ? value.get<std::string>() : "<not a string: " + value.dump() + ">";
  }
  void SetField(const std::string& css, const std::string& text) {
    driver.Clear(css);
    driver.Type(css, text);
  }
  // Types `text` into the message box and presses Send.
  void Send(const std::string& text) {
    driver.Type("#input", text);
    driver.Click("#send");
  }
  // Waits until the page is idle again (the reply finished, was stopped or failed).
  bool WaitIdle() {
    return Eventually([&] { return State() == "idle"; });
  }
  void SaveScreenshot(const std::string& name) {
    const std::string path = std::string(PINFER_WEBUI_SCREENSHOT_DIR) + "/" + name;
    std::ofstream(path, std::ios::binary) << driver.Screenshot();
    std::cout << "screenshot: " << path << std::endl;
  }
};

// The API's answer to the same conversation and settings as the page sends (greedy: temperature 0).
std::string ApiAnswer(int port, const json& messages, int max_tokens, int64_t* tokens = nullptr) {
  const json request = {{"messages", messages},
                        {"temperature", 0},
                        {"top_p", 0.95},
                        {"max_tokens", max_tokens}};
  const test::HttpReply reply = test::Post(port, "/v1/chat/completions", request);
  EXPECT_EQ(reply.status, 200) << reply.body;
  if (reply.status != 200) return "<error>";
  if (tokens != nullptr) *tokens = reply.Json()["usage"]["completion_tokens"].get<int64_t>();
  return test::ReplyText(reply.Json());
}

TEST(ChatPageBrowserTest, ChatsStopsShowsErrorsAndFitsAPhone) {
  std::string why;
  bool missing = false;
  std::unique_ptr<WebDriver> driver = WebDriver::Start(1100, 800, &why, &missing);
  if (missing) GTEST_SKIP() << why;
  ASSERT_NE(driver, nullptr) << why;
  Page page{*driver};

  // One slot and no queue, so that a request beside a running one gets 503 at once; a context
  // long enough for a reply that takes seconds, to be stopped.
  test::LogCapture log;
  ServerOptions options;
  options.scheduler.parallel = 1;
  options.scheduler.queue_length = 0;
  options.max_tokens = 8000;
  options.log = log.Sink();
  std::unique_ptr<PiServer> server = test::StartServer(options, /*context=*/8192);
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  driver->Navigate("http://127.0.0.1:" + std::to_string(port) + "/");
  ASSERT_TRUE(Eventually([&] { return page.State() == "idle"; })) << page.State();
  // /props: the model and its context in the header; the mode only when not dense.
  ASSERT_TRUE(Eventually([&] { return !page.Value("return document.getElementById('model').textContent;").empty(); }));
  EXPECT_EQ(page.Value("return document.getElementById('model').textContent;"),
            server->model_name() + " · context 8192");
  EXPECT_EQ(driver->Execute("return document.getElementById('mode').hidden;"), true);

  // Two turns at temperature 0 with a system prompt: each reply, streamed, equals the API's greedy
  // answer to the whole conversation so far.
  driver->Click("#settings summary");
  driver->Type("#system", kSystem);
  page.SetField("#temperature", "0");
  page.SetField("#max-tokens", "24");
  json messages = {{{"role", "system"}, {"content", kSystem}}};
  for (const std::string question : {"Tell me about a cat.", "And then?"}) {
    SCOPED_TRACE(question);
    const int shown = page.Messages();
    page.Send(question);
    ASSERT_EQ(page.Messages(), shown + 2);  // the question and the reply to come
    ASSERT_TRUE(page.WaitIdle());
    messages.push_back({{"role", "user"}, {"content", question}});
    int64_t tokens = 0;
    const std::string expected = ApiAnswer(port, messages, 24, &tokens);
    EXPECT_FALSE(expected.empty());
    EXPECT_EQ(page.LastReply(), expected);
    messages.push_back({{"role", "assistant"}, {"content", expected}});
    // "<n> tokens in <t> s, <r> tokens/s, finish <reason>"
    const std::string status = page.Status();
    EXPECT_TRUE(std::regex_match(
        status, std::regex(std::to_string(tokens) + " tokens in [0-9.]+ s, [0-9.]+ tokens/s, "
                                                    "finish (length|stop)")))
        << status;
    EXPECT_FALSE(page.StatusIsError());
  }
  EXPECT_EQ(page.Messages(), 4);
  page.SaveScreenshot("chat-page-desktop.png");

  // A full queue: while the API holds the only slot, the page's request gets 503, shown as text;
  // the question goes back to the input.
  driver->Click("#new-chat");
  {
    std::atomic<bool> release{false};
    std::atomic<bool> started{false};
    std::thread holder([&] {
      json request = {{"prompt", "Once upon a time"}, {"max_tokens", 8000}, {"stream", true}};
      test::PostStream(port, "/v1/completions", request, [&](const json&) {
        started = true;
        return !release;
      });
    });
    ASSERT_TRUE(Eventually([&] { return started.load(); }));
    page.Send("Hello?");
    EXPECT_TRUE(Eventually([&] { return absl::StartsWith(page.Status(), "HTTP 503: "); }))
        << page.Status();
    EXPECT_TRUE(page.StatusIsError());
    EXPECT_EQ(page.Value("return document.getElementById('input').value;"), "Hello?");
    EXPECT_EQ(page.Messages(), 0);
    release = true;
    holder.join();
  }
  ASSERT_TRUE(Eventually([&] { return server->stats().busy_slots == 0; }));

  // Stop: a reply of up to 8000 tokens (seconds of work) is stopped once it streams. The page
  // stops at once; the server sees the client leave and frees the slot; the reply then grows no
  // more; the page and the server answer the next request.
  driver->Clear("#input");
  page.SetField("#max-tokens", "8000");
  page.Send("Tell me a long story.");
  ASSERT_TRUE(Eventually([&] { return page.State() == "streaming" && page.LastReply().size() > 0; }))
      << page.State() << " " << page.Status();
  driver->Click("#stop");
  ASSERT_TRUE(page.WaitIdle());
  EXPECT_TRUE(absl::StartsWith(page.Status(), "stopped after ")) << page.Status();
  EXPECT_FALSE(page.StatusIsError());
  // (The stream that held the slot above was /v1/completions.)
  constexpr char kLeft[] = "POST /v1/chat/completions: the client went away while streaming";
  ASSERT_TRUE(Eventually([&] { return log.Contains(kLeft) && server->stats().busy_slots == 0; }))
      << absl::StrJoin(log.Lines(), "\n");
  const std::string stopped = page.LastReply();
  EXPECT_FALSE(stopped.empty());
  // Cut well before its 8000 tokens: "..., after N generated tokens in T s".
  for (const std::string& line : log.Lines()) {
    std::smatch cut;
    if (!absl::StrContains(line, kLeft)) continue;
    ASSERT_TRUE(std::regex_search(line, cut, std::regex("after ([0-9]+) generated tokens")))
        << line;
    EXPECT_LT(std::stoi(cut[1].str()), 8000) << line;
  }
  EXPECT_EQ(test::Get(port, "/health").status, 200);
  page.SetField("#max-tokens", "8");
  page.Send("One more?");
  ASSERT_TRUE(Eventually([&] { return page.Messages() == 4; }));
  ASSERT_TRUE(page.WaitIdle());
  EXPECT_TRUE(absl::StrContains(page.Status(), "tokens/s")) << page.Status();
  EXPECT_EQ(page.LastReply().empty(), false);
  // Whatever the stopped stream still had in flight was dropped: the stopped reply is unchanged.
  EXPECT_EQ(page.Value("return document.querySelectorAll('.msg.assistant')[0].textContent;"),
            stopped);

  // A phone's screen, the settings folded: nothing wider than the window, the composer in view.
  driver->Click("#settings summary");
  driver->SetWindowSize(390, 844);
  ASSERT_TRUE(Eventually([&] { return driver->Execute("return window.innerWidth;") == 390; }));
  EXPECT_EQ(driver->Execute("return document.documentElement.scrollWidth <= window.innerWidth;"),
            true);
  EXPECT_EQ(driver->Execute(
                "const r = document.getElementById('send').getBoundingClientRect();"
                "return r.bottom <= window.innerHeight && r.right <= window.innerWidth;"),
            true);
  page.SaveScreenshot("chat-page-phone.png");
  driver->SetWindowSize(1100, 800);

  // An API key, on a server whose FFN is sparse: the page says it needs a key, a request without
  // it fails with 401 as text, and with the key typed in Settings the page shows the mode and
  // chats.
  ServerOptions keyed;
  keyed.api_key = "secret";
  test::FfnServer sparse = test::StartReluServer(
      [](const Model&) { return test::ExactSparseSetup(); }, keyed);
  PiServer* locked = sparse.server.get();
  ASSERT_NE(locked, nullptr);
  driver->Navigate("http://127.0.0.1:" + std::to_string(locked->port()) + "/");
  EXPECT_TRUE(Eventually([&] { return absl::StartsWith(page.Status(), "HTTP 401: "); }))
      << page.Status();
  EXPECT_TRUE(absl::StrContains(page.Status(), "set the API key in Settings")) << page.Status();
  driver->Click("#settings summary");
  page.SetField("#max-tokens", "4");
  page.Send("Hi");
  ASSERT_TRUE(Eventually([&] { return absl::StartsWith(page.Status(), "HTTP 401: no API key"); }))
      << page.Status();
  EXPECT_TRUE(page.StatusIsError());
  driver->Type("#api-key", "secret");
  driver->Click("#input");  // leaving the field: the page asks /props again, with the key
  ASSERT_TRUE(Eventually([&] { return page.Status().empty(); })) << page.Status();
  EXPECT_EQ(driver->Execute("return document.getElementById('mode').hidden;"), false);
  EXPECT_EQ(page.Value("return document.getElementById('mode').textContent;"), "sparse");
  driver->Click("#send");
  ASSERT_TRUE(Eventually([&] { return absl::StrContains(page.Status(), "tokens/s"); }))
      << page.Status();
  EXPECT_EQ(page.Messages(), 2);
  page.SaveScreenshot("chat-page-sparse.png");
}

}  // namespace
}  // namespace pinfer
