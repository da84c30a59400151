// Slow and idle clients against an in-process server: while many connections send their requests
// a header line at a time, /health and completions are answered at once; the slow requests get a
// 408 at the read deadline; connections beyond --max-connections get a 503 at once; idle ones are
// closed; and a shutdown keeps to its grace. Each test takes a few seconds at most.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/server/server_harness.h"

namespace pinfer {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr char kCompletions[] = "/v1/completions";

json Greedy(const std::string& prompt, int max_tokens) {
  return json{{"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}};
}

// Connections that each began a request and send one more header line every 100 ms, for at most
// `limit` (a bound for a server that never answers them).
class Drippers {
 public:
  Drippers(int port, int count, milliseconds limit = milliseconds(8000)) {
    for (int i = 0; i < count; ++i) {
      connections_.push_back(std::make_unique<test::RawConnection>(port));
      connections_.back()->Send("POST /v1/completions HTTP/1.1\r\nHost: test\r\n");
    }
    thread_ = std::thread([this, limit] {
      const Clock::time_point until = Clock::now() + limit;
      while (!stop_ && Clock::now() < until) {
        for (auto& c : connections_) c->Send("X-Drip: 1\r\n");
        std::this_thread::sleep_for(milliseconds(100));
      }
    });
  }
  ~Drippers() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // Only once stopped: the thread sends to every connection.
  std::vector<std::unique_ptr<test::RawConnection>>& connections() { return connections_; }

 private:
  std::vector<std::unique_ptr<test::RawConnection>> connections_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// A client that gives up after `seconds`.
httplib::Client ImpatientClient(int port, int seconds) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(seconds);
  client.set_read_timeout(seconds);
  client.set_write_timeout(seconds);
  return client;
}

TEST(SlowClientTest, DrippingClientsDoNotStallHealthOrCompletions) {
  test::LogCapture log;
  ServerOptions options;
  options.scheduler.parallel = 2;
  options.scheduler.queue_length = 2;
  options.read_timeout_seconds = 2;
  options.log = log.Sink();
  std::unique_ptr<PiServer> server = test::StartServer(options);
  ASSERT_NE(server, nullptr);
  const int port = server->port();

  // 40 slow requests: more than the 12 threads a fixed pool would have (2 slots + 2 queued + 8),
  // and one more whose headers are whole but whose body stops after its first byte.
  const Clock::time_point start = Clock::now();
  Drippers drippers(port, 40);
  test::RawConnection slow_body(port);
  slow_body.Send("POST /v1/completions HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n{");
  // (The server accepts connections in order: the requests below come after all of those.)

  httplib::Client client = ImpatientClient(port, 5);
  Clock::time_point t = Clock::now();
  const httplib::Result health = client.Get("/health");
  const double health_seconds = test::SecondsSince(t);
  ASSERT_TRUE(health) << httplib::to_string(health.error());
  EXPECT_EQ(health->status, 200);
  t = Clock::now();
  const httplib::Result completion =
      client.Post(kCompletions, Greedy("Once upon a time", 8).dump(), "application/json");
  const double completion_seconds = test::SecondsSince(t);
  ASSERT_TRUE(completion) << httplib::to_string(completion.error());
  EXPECT_EQ(completion->status, 200) << completion->body;
  std::fprintf(stderr, "under 41 slow clients: /health in %.3f s, a completion in %.3f s\n",
               health_seconds, completion_seconds);
  EXPECT_LT(health_seconds, 1.0);
  EXPECT_LT(completion_seconds, 2.0);

  // The body that never ends gets its 408 at the deadline, 2 s after its connection.
  std::string response = slow_body.ReadResponse(milliseconds(5000));
  ASSERT_EQ(test::RawStatus(response), 408) << response;
  EXPECT_GE(test::SecondsSince(start), 2.0);
  EXPECT_EQ(json::parse(test::RawBody(response), nullptr, false)["error"]["code"],
            "request_timeout")
      << response;
  EXPECT_TRUE(slow_body.ClosedWithin(milliseconds(3000)));
  // So do the headers that never end; then their connections close.
  drippers.Stop();
  int timed_out = 0;
  for (auto& c : drippers.connections()) {
    response = c->ReadResponse(milliseconds(3000));
    timed_out += test::RawStatus(response) == 408;
    EXPECT_TRUE(absl::StrContains(response, "within 2 s (--read-timeout)")) << response;
    EXPECT_TRUE(c->ClosedWithin(milliseconds(3000)));
  }
  EXPECT_EQ(timed_out, 40);
  EXPECT_LT(test::SecondsSince(start), 8.0);
  EXPECT_TRUE(
      log.Contains("POST /v1/completions: 408 the request was not received whole within 2 s"));
  // And the server still serves.
  EXPECT_EQ(test::Get(port, "/health").status, 200);
}

TEST(SlowClientTest, ConnectionsBeyondTheCapGet503AtOnce) {
  test::LogCapture log;
  ServerOptions options;
  options.scheduler.parallel = 1;
  options.scheduler.queue_length = 1;
  options.max_connections = 10;  // the least allowed: 1 slot + 1 queued + 8
  options.log = log.Sink();
  std::unique_ptr<PiServer> server = test::StartServer(options);
  ASSERT_NE(server, nullptr);
  const int port = server->port();

  std::vector<std::unique_ptr<test::RawConnection>> idle;
  for (int i = 0; i < 10; ++i) idle.push_back(std::make_unique<test::RawConnection>(port));
  // Accepted after the 10 (the kernel queues connections in order): over the cap.
  test::RawConnection extra(port);
  extra.Send("GET /health HTTP/1.1\r\nHost: test\r\n\r\n");
  const Clock::time_point t = Clock::now();
  const std::string response = extra.ReadResponse(milliseconds(3000));
  const double seconds = test::SecondsSince(t);
  ASSERT_EQ(test::RawStatus(response), 503) << response;
  EXPECT_LT(seconds, 1.0);
  const json body = json::parse(test::RawBody(response), nullptr, false);
  EXPECT_EQ(body["error"]["code"], "server_busy") << response;
  EXPECT_TRUE(absl::StrContains(body["error"]["message"].get<std::string>(), "--max-connections"))
      << response;
  EXPECT_EQ(test::RawHeader(response, "Connection"), "close");
  EXPECT_TRUE(extra.ClosedWithin(milliseconds(3000)));
  EXPECT_TRUE(log.Contains("refused 1 connection"));

  // Once the idle clients leave, their places are free again.
  idle.clear();
  bool answered = false;
  for (int i = 0; i < 100 && !answered; ++i) {
    answered = test::Get(port, "/health").status == 200;
    if (!answered) std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_TRUE(answered);
}

TEST(SlowClientTest, IdleConnectionsAreClosedAtTheReadTimeout) {
  ServerOptions options;
  options.read_timeout_seconds = 0.5;
  std::unique_ptr<PiServer> server = test::StartServer(options);
  ASSERT_NE(server, nullptr);
  const Clock::time_point start = Clock::now();
  std::vector<std::unique_ptr<test::RawConnection>> idle;
  for (int i = 0; i < 30; ++i)
    idle.push_back(std::make_unique<test::RawConnection>(server->port()));
  for (auto& c : idle) {
    // Closed without a word (they asked nothing), after the read timeout and not long after it.
    EXPECT_EQ(c->ReadResponse(milliseconds(3000)), "");
    EXPECT_TRUE(c->ClosedWithin(milliseconds(100)));
  }
  const double seconds = test::SecondsSince(start);
  EXPECT_GE(seconds, 0.5);
  EXPECT_LT(seconds, 3.0);
}

TEST(SlowClientTest, ShutdownKeepsToItsGraceDespiteSlowClients) {
  // The stream is held at its 4th token (test::HoldPoint): it cannot end before the grace does.
  test::HoldPoint held(test::WithMaxTokens(3000), /*at=*/4);
  ServerOptions options;
  options.scheduler.parallel = 1;
  options.scheduler.queue_length = 1;
  options.scheduler.hold = held.Hook();
  options.max_tokens = 4000;
  std::unique_ptr<PiServer> server = test::StartServer(options, /*context=*/4096);
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  // A long generation streams, and 20 clients (more than the 10 threads of a fixed pool) are
  // sending their requests slowly when the shutdown comes.
  json long_request = Greedy("Once upon a time", 3000);
  long_request["stream"] = true;
  long_request["stream_options"] = {{"include_usage", true}};
  test::StreamReply running;
  std::jthread streamer([&] { running = test::PostStream(port, kCompletions, long_request); });
  ASSERT_TRUE(held.WaitUntilHeld());
  Drippers drippers(port, 20);
  // The server accepts connections in order: once a later one is answered, the 20 are its.
  EXPECT_EQ(test::Get(port, "/health").status, 200);

  const Clock::time_point t = Clock::now();
  server->Shutdown(milliseconds(300));
  const double seconds = test::SecondsSince(t);
  streamer.join();
  drippers.Stop();
  std::fprintf(stderr, "shutdown with a 0.3 s grace and 20 slow clients: %.2f s\n", seconds);
  // The grace, then at most 2 s for the responses to be written.
  EXPECT_GE(seconds, 0.3);
  EXPECT_LT(seconds, 0.3 + 2.5);
  // Cut where it was held, and ended properly.
  EXPECT_TRUE(running.done);
  EXPECT_EQ(running.FinishReason(), "length");
  ASSERT_FALSE(running.events.empty());
  EXPECT_EQ(running.events.back()["usage"]["completion_tokens"], 4);
  // The slow requests were told.
  for (auto& c : drippers.connections()) {
    const std::string response = c->ReadResponse(milliseconds(1000));
    EXPECT_EQ(test::RawStatus(response), 503) << response;
    EXPECT_TRUE(absl::StrContains(response, "shutting down")) << response;
  }
  EXPECT_EQ(test::Get(port, "/health").status, -1);
}

}  // namespace
}  // namespace pinfer
