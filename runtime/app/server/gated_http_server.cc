#include "runtime/app/server/gated_http_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace pinfer {
namespace {

using Clock = std::chrono::steady_clock;

// cpp-httplib's accept loop passes each accepted socket to the task queue inside a closure, from
// which the socket cannot be got: this queue runs the closure at once, on the accept thread. The
// closure calls process_and_close_socket (virtual, overridden below), which admits the socket to
// a thread of its own or refuses it, without blocking the accept loop.
class InlineTaskQueue : public httplib::TaskQueue {
 public:
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override {}  // GatedHttpServer::CutAndJoin() ends the connections' threads
};

const char* StatusText(int status) {
  switch (status) {
    case 408:
      return "Request Timeout";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

// A whole response of our own, for when cpp-httplib has not parsed a request to answer through.
std::string RawResponse(const ApiError& error) {
  const std::string body = error.Body();
  return absl::StrFormat(
      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s"
      "Connection: close\r\n\r\n%s",
      error.http_status, StatusText(error.http_status), body.size(),
      error.http_status == 503 ? "Retry-After: 1\r\n" : "", body);
}

ApiError ShuttingDown() {
  return ApiErrorFromStatus(absl::UnavailableError("the server is shutting down"));
}

constexpr std::chrono::milliseconds kStoppingLinger(250);

double Seconds(std::chrono::milliseconds duration) { return duration.count() / 1000.0; }

}  // namespace

GatedHttpServer::GatedHttpServer(const Limits& limits, std::function<void(const std::string&)> log)
    : limits_(limits), log_(std::move(log)), gate_(limits.max_connections, log_) {
  new_task_queue = [] { return new InlineTaskQueue; };
}

GatedHttpServer::~GatedHttpServer() { gate_.Stop(); }

void GatedHttpServer::WidenListenBacklog() {
  // listen(2) on a listening socket changes its backlog.
  if (svr_sock_ != INVALID_SOCKET) ::listen(svr_sock_, SOMAXCONN);
}

std::optional<ApiError> GatedHttpServer::ReadFailure(const ServerConnection& connection) const {
  // A connection that sent nothing is closed without a word (it may be an idle keep-alive one).
  if (!connection.request_started()) return std::nullopt;
  if (connection.read_stopped()) return ShuttingDown();
  if (!connection.read_timed_out()) return std::nullopt;
  ApiError error;
  error.http_status = 408;
  error.code = "request_timeout";
  error.message = absl::StrFormat("the request was not received whole within %g s (--read-timeout)",
                                  Seconds(limits_.read_timeout));
  return error;
}

bool GatedHttpServer::process_and_close_socket(socket_t sock) {
  const Clock::time_point accepted = Clock::now();
  if (gate_.Admit([this, sock, accepted] { Serve(sock, accepted); })) return true;
  // Refused: the 503 goes out at once (it fits the new socket's send buffer), before the client's
  // request is read; then the socket lingers on a spare thread, or is closed if none is free.
  ApiError busy = ShuttingDown();
  if (!gate_.stopping()) {
    busy.message =
        absl::StrCat("too many connections: the server serves at most ", gate_.max_connections(),
                     " at a time (--max-connections); try again later");
  }
  const std::string response = RawResponse(busy);
  const ssize_t ignored = send(sock, response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  (void)ignored;
  const int cut_fd = gate_.cut_fd();
  const std::chrono::milliseconds linger = limits_.linger;
  if (!gate_.AdmitRefusal([sock, linger, cut_fd] { LingeringClose(sock, linger, cut_fd); })) {
    close(sock);
  }
  return true;
}

void GatedHttpServer::Serve(socket_t sock, Clock::time_point accepted) {
  ServerConnection connection(sock, gate_.stop_reading_fd(), gate_.cut_fd(), limits_.write_timeout);
  bool linger = false;
  for (size_t count = 0; count < keep_alive_max_count_; ++count) {
    // The first request counts from the accept: a client that connects and sends nothing holds
    // its place for the read timeout at most. A later one counts from its first byte, which may
    // be awaited for the keep-alive timeout.
    const Clock::time_point idle_until =
        count == 0 ? accepted + limits_.read_timeout
                   : Clock::now() + std::chrono::seconds(keep_alive_timeout_sec_);
    if (!connection.WaitForRequest(idle_until)) break;
    connection.BeginRequest(count == 0 ? accepted + limits_.read_timeout
                                       : Clock::now() + limits_.read_timeout);
    const bool last =
        count + 1 == keep_alive_max_count_ || gate_.stopping() || svr_sock_ == INVALID_SOCKET;
    bool connection_closed = false;
    const bool answered = process_request(connection, last, connection_closed, nullptr);
    if (const std::optional<ApiError> failure = ReadFailure(connection)) {
      // cpp-httplib answers a request whose headers or body it could not read with a 400 (which
      // the error handler turns into this failure, and logs), but gives up silently on a request
      // line: answer and log that here.
      if (!connection.response_started()) {
        connection.SendRaw(RawResponse(*failure));
        if (failure->http_status == 408 && log_) {
          std::string ip;
          int port = -1;
          connection.get_remote_ip_and_port(ip, port);
          log_(absl::StrCat(ip, ":", port, ": 408 ", failure->message));
        }
      }
      linger = true;
      break;
    }
    if (connection.close_after_response()) {
      linger = true;
      break;
    }
    if (!answered || connection_closed || last) break;
  }
  // At shutdown, a slow client's 503 gets a shorter linger: the shutdown waits for it.
  connection.Close(!linger            ? std::chrono::milliseconds(0)
                   : gate_.stopping() ? std::min(limits_.linger, kStoppingLinger)
                                      : limits_.linger);
}

}  // namespace pinfer
