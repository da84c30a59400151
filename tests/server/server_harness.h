// What the server tests share: the bundled stories260K model loaded once per process, a PiServer
// started on a free loopback port, and a real HTTP client (cpp-httplib) that parses JSON replies
// and server-sent-event streams.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "httplib.h"
#include "nlohmann/json.hpp"
#include "runtime/app/runtime_flags.h"
#include "runtime/app/server/http_server.h"

namespace pinfer::test {

using nlohmann::json;

// stories260K (f32), converted and loaded once per process.
std::string StoriesPath();
LoadedRuntime& StoriesRuntime();

// Generate()'s greedy tokens after `prompt` (encoded as the server encodes it) on StoriesRuntime(),
// each as its text: what a stream of them sends, an event each. Not while a server over the same
// runtime generates (they would share the executor).
std::vector<std::string> GreedyPieces(const std::string& prompt, int n);

// What the scheduler tests share: a greedy request of `max_tokens` after `prompt`; the tokens
// Generate() gives for it on a session of its own over `rt` (the reference a scheduled generation
// must equal); the text of tokens as their pieces joined (as a stream sends them; Decode would drop
// a leading space); and a generation's final progress with all its pieces, once it is finished.
GenerationRequest GreedyRequest(std::vector<int32_t> prompt, int64_t max_tokens);
std::vector<int32_t> GenerateAlone(LoadedRuntime& rt, const GenerationRequest& request);
std::string PiecesOf(const Tokenizer& tokenizer, const std::vector<int32_t>& tokens);
Generation::Progress WaitToTheEnd(Generation& generation);

// A server over StoriesRuntime() on 127.0.0.1 and a free port, with request logs off unless
// options.log is set; sessions of `context` positions (0: the model's 512).
std::unique_ptr<PiServer> StartServer(ServerOptions options = {}, int64_t context = 0);

// A server's log lines, collected (ServerOptions::log). Must outlive the server.
class LogCapture {
 public:
  std::function<void(const std::string&)> Sink();
  std::vector<std::string> Lines() const;
  // Whether some line contains `text`.
  bool Contains(const std::string& text) const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
};

// Holds chosen generations at a chosen token (through SchedulerOptions::hold) until the test lets
// them go, so that a test orders events by the state of a generation ("it has generated k tokens
// and cannot generate more") instead of racing the clock. Must outlive the scheduler it is given
// to.
class HoldPoint {
 public:
  // Generations whose request `selects` are held once they have generated `at` tokens.
  HoldPoint(std::function<bool(const GenerationRequest&)> selects, int64_t at);
  // For SchedulerOptions::hold.
  std::function<bool(const Generation&, int64_t)> Hook();
  // Whether to hold `generation` now (what Hook() answers).
  bool Holds(const Generation& generation, int64_t generated);
  // Waits (up to 20 s) until `count` generations have been held at the current point; false when
  // they have not.
  bool WaitUntilHeld(int count = 1);
  // Holds at `at` tokens from now on (more than now: the held generations go on to there), and
  // counts the generations held there afresh.
  void MoveTo(int64_t at);
  // Holds nothing from now on.
  void Release();

 private:
  const std::function<bool(const GenerationRequest&)> selects_;
  std::mutex mutex_;
  std::condition_variable changed_;
  int64_t at_;
  bool released_ = false;
  std::set<const Generation*> reached_;  // held at the current point
};

// Selects the requests of `max_tokens` tokens (HoldPoint).
std::function<bool(const GenerationRequest&)> WithMaxTokens(int64_t max_tokens);

// A TCP connection to 127.0.0.1:port, for what cpp-httplib's client cannot do: send a request a
// few bytes at a time, frame it wrong, or put a NUL in a header.
class RawConnection {
 public:
  explicit RawConnection(int port);  // a test failure when it cannot connect
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool Send(const std::string& bytes);
  // What the server sends until it closes, a whole response (headers and Content-Length bytes)
  // has arrived, or `timeout` passes.
  std::string ReadResponse(std::chrono::milliseconds timeout);
  // Whether the server closes the connection within `timeout` (what it sends first is dropped).
  bool ClosedWithin(std::chrono::milliseconds timeout);

 private:
  int fd_ = -1;
  std::string pending_;  // received beyond the last response
};

// A raw response's status code (-1 when there is none), body, and a header's value ("" if none).
int RawStatus(const std::string& response);
std::string RawBody(const std::string& response);
std::string RawHeader(const std::string& response, const std::string& name);

// Seconds since `start`.
double SecondsSince(std::chrono::steady_clock::time_point start);

struct HttpReply {
  int status = -1;  // -1: no reply (connection error)
  std::string body;
  std::string content_type;
  httplib::Headers headers;
  json Json() const;  // the body parsed; discarded when it is not JSON
  std::string Header(const std::string& name) const;  // "" when there is none
};

HttpReply Get(int port, const std::string& path, const httplib::Headers& headers = {});
HttpReply PostRaw(int port, const std::string& path, const std::string& body,
                  const httplib::Headers& headers = {});
HttpReply Post(int port, const std::string& path, const json& body,
               const httplib::Headers& headers = {});

// A streamed reply: each "data:" event parsed as JSON, until "data: [DONE]".
struct StreamReply {
  int status = -1;
  std::string content_type;
  std::vector<json> events;
  bool done = false;  // saw "data: [DONE]"
  std::string raw;    // everything received
  // Concatenated text deltas (completions: choices[0].text; chat: choices[0].delta.content).
  std::string Text() const;
  // The text delta of each event that carries text (not the chat's role event, the finish event or
  // the usage event), in order.
  std::vector<std::string> Pieces() const;
  // The finish_reason of the last chunk that has one; "" when none.
  std::string FinishReason() const;
};
// `on_event` sees each event as it arrives; returning false closes the connection (a client that
// goes away).
StreamReply PostStream(int port, const std::string& path, const json& body,
                       const std::function<bool(const json&)>& on_event = {},
                       const httplib::Headers& headers = {});

// The text of a non-streaming reply's first choice (completion text or chat message content).
std::string ReplyText(const json& reply);

// Resident memory of this process, from /proc/self/statm.
uint64_t ResidentBytes();

// Expects an OpenAI-style error reply: `status`, {"error": {"message", "type", "param", "code"}},
// its code `code` (empty: null) and its message containing `mention`.
void ExpectApiError(const HttpReply& reply, int status, const std::string& code,
                    const std::string& mention);

}  // namespace pinfer::test
