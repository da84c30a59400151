#include "tests/server/server_harness.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "gtest/gtest.h"
#include "runtime/common/cli_common.h"
#include "runtime/exec/generator.h"
#include "runtime/exec/session.h"
#include "runtime/text/sampler.h"
#include "tests/runtime/test_models.h"

namespace pinfer::test {

std::string StoriesPath() { return ConvertedModel(BundledModel::kStories260K, DType::kF32); }

LoadedRuntime& StoriesRuntime() {
  static std::once_flag once;
  static LoadedRuntime* runtime = nullptr;
  std::call_once(once, [] {
    RuntimeFlags flags;
    flags.model_path = StoriesPath();
    flags.populate = false;
    absl::StatusOr<LoadedRuntime> loaded = LoadRuntime(flags);
    if (!loaded.ok()) {
      ADD_FAILURE() << loaded.status();
      std::abort();
    }
    runtime = new LoadedRuntime(*std::move(loaded));  // lives until the process exits
  });
  return *runtime;
}

std::vector<std::string> GreedyPieces(const std::string& prompt, int n) {
  LoadedRuntime& rt = StoriesRuntime();
  std::unique_ptr<Session> session = *Session::Create(*rt.executor);
  SamplerParams params;
  params.temperature = 0;
  Sampler sampler(params);
  GenerationOptions options;
  options.max_tokens = n;
  const absl::StatusOr<GenerationResult> result =
      Generate(*session, sampler, *rt.tokenizer, rt.tokenizer->Encode(prompt), options, nullptr);
  EXPECT_TRUE(result.ok()) << result.status();
  std::vector<std::string> pieces;
  if (!result.ok()) return pieces;
  for (const int32_t token : result->tokens) pieces.push_back(rt.tokenizer->TokenToPiece(token));
  return pieces;
}

GenerationRequest GreedyRequest(std::vector<int32_t> prompt, int64_t max_tokens) {
  GenerationRequest r;
  r.prompt = std::move(prompt);
  r.sampling.temperature = 0;
  r.max_tokens = max_tokens;
  return r;
}

std::vector<int32_t> GenerateAlone(LoadedRuntime& rt, const GenerationRequest& request) {
  std::unique_ptr<Session> session = *Session::Create(*rt.executor);
  Sampler sampler(request.sampling);
  GenerationOptions options;
  options.max_tokens = request.max_tokens;
  return Generate(*session, sampler, *rt.tokenizer, request.prompt, options, nullptr)->tokens;
}

std::string PiecesOf(const Tokenizer& tokenizer, const std::vector<int32_t>& tokens) {
  std::string text;
  for (const int32_t token : tokens) text += tokenizer.TokenToPiece(token);
  return text;
}

Generation::Progress WaitToTheEnd(Generation& generation) {
  std::vector<std::string> pieces;
  Generation::Progress p;
  do {
    p = generation.Wait(std::chrono::milliseconds(50));
    pieces.insert(pieces.end(), p.pieces.begin(), p.pieces.end());
  } while (p.phase != Generation::Phase::kFinished);
  p.pieces = pieces;
  return p;
}

std::unique_ptr<PiServer> StartServer(ServerOptions options, int64_t context) {
  LoadedRuntime& rt = StoriesRuntime();
  options.host = "127.0.0.1";
  options.port = 0;
  if (!options.log) options.log_requests = false;
  SessionOptions session;
  session.context_length = context;
  absl::StatusOr<std::unique_ptr<PiServer>> server =
      PiServer::Create(*rt.executor, *rt.tokenizer, session, options);
  if (!server.ok()) {
    ADD_FAILURE() << server.status();
    return nullptr;
  }
  if (absl::Status s = (*server)->Start(); !s.ok()) {
    ADD_FAILURE() << s;
    return nullptr;
  }
  return *std::move(server);
}

std::function<void(const std::string&)> LogCapture::Sink() {
  return [this](const std::string& line) {
    std::lock_guard<std::mutex> lock(mutex_);
    lines_.push_back(line);
  };
}

std::vector<std::string> LogCapture::Lines() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return lines_;
}

bool LogCapture::Contains(const std::string& text) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const std::string& line : lines_) {
    if (absl::StrContains(line, text)) return true;
  }
  return false;
}

HoldPoint::HoldPoint(std::function<bool(const GenerationRequest&)> selects, int64_t at)
    : selects_(std::move(selects)), at_(at) {}

std::function<bool(const Generation&, int64_t)> HoldPoint::Hook() {
  return [this](const Generation& generation, int64_t generated) {
    return Holds(generation, generated);
  };
}

bool HoldPoint::Holds(const Generation& generation, int64_t generated) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (released_ || generated < at_ || !selects_(generation.request())) return false;
  if (reached_.insert(&generation).second) changed_.notify_all();
  return true;
}

bool HoldPoint::WaitUntilHeld(int count) {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, std::chrono::seconds(20),
                           [&] { return reached_.size() >= static_cast<size_t>(count); });
}

void HoldPoint::MoveTo(int64_t at) {
  std::lock_guard<std::mutex> lock(mutex_);
  at_ = at;
  reached_.clear();
}

void HoldPoint::Release() {
  std::lock_guard<std::mutex> lock(mutex_);
  released_ = true;
}

std::function<bool(const GenerationRequest&)> WithMaxTokens(int64_t max_tokens) {
  return [max_tokens](const GenerationRequest& r) { return r.max_tokens == max_tokens; };
}

RawConnection::RawConnection(int port) {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd_ < 0 || connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    ADD_FAILURE() << "cannot connect to 127.0.0.1:" << port;
  }
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) close(fd_);
}

bool RawConnection::Send(const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

namespace {

// The length of the whole response at the start of `data`, 0 while it is incomplete.
size_t ResponseLength(const std::string& data) {
  const size_t end = data.find("\r\n\r\n");
  if (end == std::string::npos) return 0;
  uint64_t length = 0;
  const std::string value = RawHeader(data.substr(0, end + 2), "Content-Length");
  if (!value.empty() && !absl::SimpleAtoi(value, &length)) return 0;
  return data.size() >= end + 4 + length ? end + 4 + length : 0;
}

}  // namespace

std::string RawConnection::ReadResponse(std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  std::string data = std::move(pending_);
  pending_.clear();
  while (ResponseLength(data) == 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    pollfd p{fd_, POLLIN, 0};
    if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buffer[4096];
    const ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    data.append(buffer, static_cast<size_t>(n));
  }
  if (const size_t length = ResponseLength(data); length > 0) {
    pending_ = data.substr(length);
    data.resize(length);
  }
  return data;
}

bool RawConnection::ClosedWithin(std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    pollfd p{fd_, POLLIN, 0};
    if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buffer[4096];
    const ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
    if (n <= 0) return true;  // closed, or reset
  }
}

int RawStatus(const std::string& response) {
  int status = -1;
  if (!absl::StartsWith(response, "HTTP/1.1 ") || response.size() < 12 ||
      !absl::SimpleAtoi(response.substr(9, 3), &status)) {
    return -1;
  }
  return status;
}

std::string RawBody(const std::string& response) {
  const size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}

std::string RawHeader(const std::string& response, const std::string& name) {
  const std::string head = response.substr(0, response.find("\r\n\r\n"));
  size_t at = 0;
  while ((at = head.find("\r\n", at)) != std::string::npos) {
    at += 2;
    const size_t colon = head.find(':', at);
    const size_t line_end = std::min(head.find("\r\n", at), head.size());
    if (colon != std::string::npos && colon < line_end &&
        absl::EqualsIgnoreCase(head.substr(at, colon - at), name)) {
      return std::string(absl::StripAsciiWhitespace(head.substr(colon + 1, line_end - colon - 1)));
    }
  }
  return "";
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

json HttpReply::Json() const { return json::parse(body, nullptr, /*allow_exceptions=*/false); }

std::string HttpReply::Header(const std::string& name) const {
  const auto it = headers.find(name);  // httplib::Headers compares names ignoring case
  return it == headers.end() ? "" : it->second;
}

namespace {

httplib::Client MakeClient(int port) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(60);
  client.set_write_timeout(60);
  return client;
}

HttpReply ToReply(const httplib::Result& result) {
  HttpReply reply;
  if (!result) return reply;
  reply.status = result->status;
  reply.body = result->body;
  reply.content_type = result->get_header_value("Content-Type");
  reply.headers = result->headers;
  return reply;
}

}  // namespace

HttpReply Get(int port, const std::string& path, const httplib::Headers& headers) {
  httplib::Client client = MakeClient(port);
  return ToReply(client.Get(path, headers));
}

HttpReply PostRaw(int port, const std::string& path, const std::string& body,
                  const httplib::Headers& headers) {
  httplib::Client client = MakeClient(port);
  return ToReply(client.Post(path, headers, body, "application/json"));
}

HttpReply Post(int port, const std::string& path, const json& body,
               const httplib::Headers& headers) {
  return PostRaw(port, path, body.dump(), headers);
}

std::string StreamReply::Text() const {
  std::string text;
  for (const json& e : events) {
    if (!e.contains("choices") || e["choices"].empty()) continue;
    const json& choice = e["choices"][0];
    if (choice.contains("text")) text += choice["text"].get<std::string>();
    if (choice.contains("delta") && choice["delta"].contains("content")) {
      text += choice["delta"]["content"].get<std::string>();
    }
  }
  return text;
}

std::vector<std::string> StreamReply::Pieces() const {
  std::vector<std::string> pieces;
  for (const json& e : events) {
    if (!e.contains("choices") || e["choices"].empty()) continue;
    const json& choice = e["choices"][0];
    if (!choice["finish_reason"].is_null()) continue;
    if (choice.contains("text")) pieces.push_back(choice["text"].get<std::string>());
    if (choice.contains("delta") && !choice["delta"].contains("role")) {
      pieces.push_back(choice["delta"].value("content", ""));
    }
  }
  return pieces;
}

std::string StreamReply::FinishReason() const {
  std::string reason;
  for (const json& e : events) {
    if (e.contains("choices") && !e["choices"].empty() &&
        e["choices"][0]["finish_reason"].is_string()) {
      reason = e["choices"][0]["finish_reason"].get<std::string>();
    }
  }
  return reason;
}

StreamReply PostStream(int port, const std::string& path, const json& body,
                       const std::function<bool(const json&)>& on_event,
                       const httplib::Headers& headers) {
  StreamReply reply;
  httplib::Client client = MakeClient(port);
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.headers = headers;
  req.set_header("Content-Type", "application/json");
  req.body = body.dump();
  std::string pending;  // bytes of an event not yet complete
  bool keep_going = true;
  req.content_receiver = [&](const char* data, size_t size, uint64_t, uint64_t) {
    reply.raw.append(data, size);
    pending.append(data, size);
    size_t end;
    while ((end = pending.find("\n\n")) != std::string::npos) {
      const std::string event = pending.substr(0, end);
      pending.erase(0, end + 2);
      if (event.rfind("data: ", 0) != 0) continue;  // comments, other fields
      const std::string payload = event.substr(6);
      if (payload == "[DONE]") {
        reply.done = true;
        continue;
      }
      reply.events.push_back(json::parse(payload, nullptr, false));
      if (on_event && !on_event(reply.events.back())) keep_going = false;
    }
    return keep_going;
  };
  httplib::Response res;
  httplib::Error error = httplib::Error::Success;
  client.send(req, res, error);
  reply.status = res.status;
  reply.content_type = res.get_header_value("Content-Type");
  return reply;
}

std::string ReplyText(const json& reply) {
  const json& choice = reply.at("choices").at(0);
  if (choice.contains("text")) return choice["text"].get<std::string>();
  return choice.at("message").at("content").get<std::string>();
}

uint64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

void ExpectApiError(const HttpReply& reply, int status, const std::string& code,
                    const std::string& mention) {
  EXPECT_EQ(reply.status, status) << reply.body;
  EXPECT_EQ(reply.content_type, "application/json") << reply.body;
  const json body = reply.Json();
  ASSERT_TRUE(body.is_object()) << reply.body;
  ASSERT_TRUE(body.contains("error")) << reply.body;
  const json& error = body["error"];
  EXPECT_TRUE(error["message"].is_string()) << reply.body;
  EXPECT_TRUE(error["type"].is_string()) << reply.body;
  EXPECT_TRUE(error.contains("param")) << reply.body;
  if (code.empty()) {
    EXPECT_TRUE(error["code"].is_null()) << reply.body;
  } else {
    EXPECT_EQ(error["code"], code) << reply.body;
  }
  EXPECT_TRUE(absl::StrContains(error["message"].get<std::string>(), mention))
      << reply.body << " lacks " << mention;
}

}  // namespace pinfer::test
