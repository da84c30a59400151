// Scale-out on an existing balancer: two pi-server replicas behind nginx, configured by
// deploy/nginx/pinfer.conf.example (its ports replaced), with one replica killed (SIGKILL) while
// it generates. Every request must still get a whole answer, and the survivor's /metrics must
// count what it served. nginx runs as the current user in a directory of its own (skipped, with
// the reason, only when nginx is not installed; scripts/setup.sh installs it).
//
// The replica killed is held-pi-server (pi-server with its generations held at a token): the
// requests it takes once the kill is due stay unfinished there, so that the kill always finds
// requests in flight on it, however fast the machine, and the survivor's count is exact.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/runtime/test_models.h"
#include "tests/server/server_harness.h"
#include "tests/server/server_process.h"

namespace pinfer {
namespace {

using nlohmann::json;

// nginx from PATH, or where Debian puts it (/usr/sbin is not on every user's PATH); "" if none.
std::string FindNginx() {
  std::vector<std::string> dirs = {"/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin"};
  if (const char* path = std::getenv("PATH")) {
    for (absl::string_view dir : absl::StrSplit(path, ':'))
      dirs.insert(dirs.begin(), std::string(dir));
  }
  for (const std::string& dir : dirs) {
    const std::string candidate = dir + "/nginx";
    if (!dir.empty() && access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// The completions served with status 200, from a replica's /metrics ("pinfer_requests_total"
// sample of /v1/completions and 200); -1 when it cannot be read.
int64_t CompletionsServed(int port) {
  const test::HttpReply reply = test::Get(port, "/metrics");
  if (reply.status != 200) return -1;
  constexpr char kSample[] = "pinfer_requests_total{endpoint=\"/v1/completions\",status=\"200\"} ";
  const size_t at = reply.body.find(kSample);
  if (at == std::string::npos) return 0;
  const size_t start = at + sizeof(kSample) - 1;
  int64_t count = -1;
  if (!absl::SimpleAtoi(reply.body.substr(start, reply.body.find('\n', start) - start), &count)) {
    return -1;
  }
  return count;
}

// nginx's main configuration around the example (which belongs in its http block), everything it
// writes inside `dir`.
std::string NginxConfig(const std::string& dir, const std::string& site) {
  return absl::StrCat("error_log ", dir, "/error.log info;\n", "pid ", dir, "/nginx.pid;\n",
                      "events { worker_connections 256; }\n", "http {\n",
                      "  log_format upstreams '$request_uri $status upstream=$upstream_addr';\n",
                      "  access_log ", dir, "/access.log upstreams;\n", "  client_body_temp_path ",
                      dir, "/body;\n", "  proxy_temp_path ", dir, "/proxy;\n",
                      "  fastcgi_temp_path ", dir, "/fastcgi;\n", "  uwsgi_temp_path ", dir,
                      "/uwsgi;\n", "  scgi_temp_path ", dir, "/scgi;\n", "  include ", site, ";\n",
                      "}\n");
}

struct Answer {
  int status = -1;
  std::string text;
};

// `count` greedy completions of `max_tokens` through `port`, from `clients` threads at once.
std::vector<Answer> Load(int port, int count, int clients, int max_tokens,
                         const std::function<void(int done)>& on_answer = {}) {
  std::vector<Answer> answers(static_cast<size_t>(count));
  std::atomic<int> next{0}, done{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      for (int i = next++; i < count; i = next++) {
        const test::HttpReply reply = test::Post(
            port, "/v1/completions",
            {{"prompt", "Once upon a time"}, {"max_tokens", max_tokens}, {"temperature", 0}});
        answers[static_cast<size_t>(i)].status = reply.status;
        if (reply.status == 200)
          answers[static_cast<size_t>(i)].text = test::ReplyText(reply.Json());
        if (on_answer) on_answer(++done);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  return answers;
}

TEST(ReplicasTest, NginxSendsTheRequestsOfAKilledReplicaToTheSurvivor) {
  const std::string nginx = FindNginx();
  if (nginx.empty()) GTEST_SKIP() << "nginx is not installed (scripts/setup.sh installs it)";
  const std::vector<std::string> model = {"-m", test::StoriesPath(), "--port", "0", "-t",
                                          "1",  "--parallel",        "2"};
  // The one to be killed holds any generation of more than 8 tokens at its 8th.
  std::vector<std::string> held_args = {"8"};
  held_args.insert(held_args.end(), model.begin(), model.end());
  test::ServerProcess doomed(held_args, {}, HELD_PI_SERVER_PATH);
  test::ServerProcess survivor(model);
  const int doomed_port = doomed.WaitForPort();
  const int survivor_port = survivor.WaitForPort();
  ASSERT_GT(doomed_port, 0) << doomed.Log();
  ASSERT_GT(survivor_port, 0) << survivor.Log();

  static std::atomic<int> runs{0};
  const std::string dir = absl::StrCat(test::ScratchDir(), "/nginx-", runs++);
  std::filesystem::create_directories(dir);
  const int port = test::FreeLoopbackPort();
  ASSERT_GT(port, 0);
  const std::string example = test::ReadRepoFile("deploy/nginx/pinfer.conf.example");
  ASSERT_TRUE(absl::StrContains(example, "server 127.0.0.1:8081 ")) << example;
  ASSERT_TRUE(absl::StrContains(example, "server 127.0.0.1:8082 ")) << example;
  ASSERT_TRUE(absl::StrContains(example, "listen 8080;")) << example;
  const std::string site = absl::StrReplaceAll(
      example, {{"127.0.0.1:8081", absl::StrCat("127.0.0.1:", doomed_port)},
                {"127.0.0.1:8082", absl::StrCat("127.0.0.1:", survivor_port)},
                {"listen 8080;", absl::StrCat("listen 127.0.0.1:", port, ";")}});
  std::ofstream(dir + "/pinfer.conf") << site;
  std::ofstream(dir + "/nginx.conf") << NginxConfig(dir, dir + "/pinfer.conf");
  // One process, in the foreground, as whoever runs the test (no master, no user switch), so
  // that killing it leaves nothing behind.
  test::ServerProcess balancer({"-p", dir, "-c", dir + "/nginx.conf", "-e", dir + "/error.log",
                                "-g", "daemon off; master_process off;"},
                               {}, nginx.c_str());
  bool up = false;
  for (int i = 0; i < 1000 && !up; ++i) {
    up = test::Get(port, "/health").status == 200;
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(up) << balancer.Log();

  // Before the kill: both replicas serve, and their counts add up to the requests sent.
  const std::string expected_8 = absl::StrJoin(test::GreedyPieces("Once upon a time", 8), "");
  const std::string expected_16 = absl::StrJoin(test::GreedyPieces("Once upon a time", 16), "");
  const std::vector<Answer> before = Load(port, 12, 4, 8);
  for (const Answer& a : before) {
    EXPECT_EQ(a.status, 200);
    EXPECT_EQ(a.text, expected_8);
  }
  const int64_t doomed_before = CompletionsServed(doomed_port);
  const int64_t survivor_before = CompletionsServed(survivor_port);
  EXPECT_GT(doomed_before, 0);
  EXPECT_GT(survivor_before, 0);
  EXPECT_EQ(doomed_before + survivor_before, 12);

  // The kill: once a request is held on the doomed replica, mid-generation.
  std::jthread killer([&] {
    EXPECT_TRUE(doomed.WaitForLog("holding a generation at 8 tokens")) << doomed.Log();
    doomed.Kill();
  });
  const std::vector<Answer> after = Load(port, 12, 4, 16);
  killer.join();
  for (const Answer& a : after) {
    EXPECT_EQ(a.status, 200);
    EXPECT_EQ(a.text, expected_16);  // whole, even when it was begun on the killed replica
  }
  // The doomed replica finished none of them (held until killed): the survivor served all 12.
  EXPECT_EQ(CompletionsServed(survivor_port), survivor_before + 12) << survivor.Log();
  // And nginx did retry some: a request whose upstreams were the doomed one, then the survivor.
  std::ifstream access(dir + "/access.log");
  std::string line;
  int retried = 0;
  const std::string chain =
      absl::StrCat("upstream=127.0.0.1:", doomed_port, ", 127.0.0.1:", survivor_port);
  while (std::getline(access, line)) {
    if (absl::StrContains(line, chain) && absl::StrContains(line, " 200 ")) ++retried;
  }
  EXPECT_GE(retried, 1) << "no request was retried on the survivor";
}

}  // namespace
}  // namespace pinfer
