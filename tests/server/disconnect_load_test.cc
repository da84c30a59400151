// A bounded load of streamed requests whose clients leave after a few events, on the pi-server
// program: no request is lost (each got its stream, the server still answers /health and a last
// request exactly, and every slot is freed), and its resident memory (VmRSS of
// /proc/PID/status) stays bounded once warmed up: a cancelled generation leaves nothing behind.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/runtime/test_models.h"
#include "tests/server/server_harness.h"
#include "tests/server/server_process.h"

namespace pinfer {
namespace {

using nlohmann::json;

// `count` streams of up to 64 tokens from `clients` threads, each closed after 3 events (the
// generation goes on past them); returns how many got a 200 stream with text.
int LeavingStreams(int port, int count, int clients) {
  std::atomic<int> next{0}, began{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      for (int i = next++; i < count; i = next++) {
        int events = 0;
        const test::StreamReply reply = test::PostStream(port, "/v1/completions",
                                                         {{"prompt", absl::StrCat("Story ", i)},
                                                          {"max_tokens", 64},
                                                          {"temperature", 0.8},
                                                          {"seed", i},
                                                          {"stream", true}},
                                                         [&](const json&) { return ++events < 3; });
        if (reply.status == 200 && !reply.Text().empty()) ++began;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  return began;
}

TEST(DisconnectLoadTest, ClientsThatLeaveStreamsEarlyLoseNothingAndLeakNothing) {
  test::ServerProcess server({"-m", test::StoriesPath(), "--port", "0", "-t", "1", "--parallel",
                              "4", "--queue", "64", "--quiet"});
  const int port = server.WaitForPort();
  ASSERT_GT(port, 0) << server.Log();
  constexpr int kClients = 8;
  constexpr int kWarmUp = 12;
  constexpr int kRequests = 60;
  // Warm up: connection threads, allocator pools, every slot's KV pages touched.
  EXPECT_EQ(LeavingStreams(port, kWarmUp, kClients), kWarmUp);
  const uint64_t rss_before = test::ResidentBytesOf(server.pid());
  ASSERT_GT(rss_before, 0u);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(LeavingStreams(port, kRequests, kClients), kRequests);
  const double seconds = test::SecondsSince(start);
  const uint64_t rss_after = test::ResidentBytesOf(server.pid());
  std::fprintf(stderr, "%d streams left after 3 events in %.2f s; pi-server RSS %.1f -> %.1f MiB\n",
               kRequests, seconds, rss_before / 1048576.0, rss_after / 1048576.0);
  EXPECT_LT(rss_after, rss_before + (20u << 20));

  // Every generation was cancelled and its slot freed; the server answers as before.
  json health;
  for (int i = 0; i < 2000; ++i) {
    health = test::Get(port, "/health").Json();
    if (health["slots_busy"] == 0 && health["queued"] == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(health["status"], "ok") << health.dump();
  EXPECT_EQ(health["slots_busy"], 0) << health.dump();
  EXPECT_EQ(health["finished"], kWarmUp + kRequests) << health.dump();
  const test::HttpReply last =
      test::Post(port, "/v1/completions",
                 {{"prompt", "Once upon a time"}, {"max_tokens", 16}, {"temperature", 0}});
  ASSERT_EQ(last.status, 200) << last.body;
  EXPECT_EQ(test::ReplyText(last.Json()),
            absl::StrJoin(test::GreedyPieces("Once upon a time", 16), ""));
}

}  // namespace
}  // namespace pinfer
