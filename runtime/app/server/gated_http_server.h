// cpp-httplib's server with pi-server's connection handling: a connection cap, a thread per
// connection, a deadline for reading each request whole, and a shutdown that does not wait on
// clients.
//
// cpp-httplib 0.11 accepts on one thread and hands each socket, as an opaque closure, to a task
// queue whose workers block in per-read timeouts: a fixed pool is exhausted by as many slow
// clients as it has threads (then every request, /health too, waits behind them), and its shutdown
// joins workers that a dripping client keeps reading. It has no hook between accept and the first
// read, nor one that bounds a whole request. What it does offer: process_and_close_socket(), a
// virtual it calls with each accepted socket through the task queue, and process_request(),
// which reads and answers one request from any httplib::Stream. So this subclass runs the task
// queue inline (the accept thread calls process_and_close_socket at once), admits the socket
// there (ConnectionGate) or refuses it with a 503, and serves an admitted one on its own thread:
// its own keep-alive loop calls process_request over a ServerConnection, whose reads enforce the
// request's deadline. HTTP parsing stays cpp-httplib's.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "httplib.h"
#include "runtime/app/server/connection_gate.h"
#include "runtime/app/server/openai_protocol.h"
#include "runtime/app/server/server_connection.h"

namespace pinfer {

class GatedHttpServer : public httplib::Server {
 public:
  struct Limits {
    int max_connections = 256;
    // From the first byte of a request (of a new connection: from its accept) to its last.
    std::chrono::milliseconds read_timeout{30000};
    // How long one write may wait for a client that does not read.
    std::chrono::milliseconds write_timeout{30000};
    // A closing connection reads what its client still sends for at most this long.
    std::chrono::milliseconds linger{1000};
  };
  // `log` gets one line (without "pi-server: ") per request that timed out, and about refusals.
  GatedHttpServer(const Limits& limits, std::function<void(const std::string&)> log);
  ~GatedHttpServer() override;

  const Limits& limits() const { return limits_; }
  // After bind_to_port(): lets the kernel queue as many connections as it allows before they are
  // accepted. cpp-httplib listens with a backlog of 5: a burst of clients (or a few slow ones
  // reconnecting) overflows it, and the kernel then drops SYNs, which clients retry only after
  // 1 s, 3 s, 7 s... while the accept loop is idle.
  void WidenListenBacklog();
  // The server stops: requests still arriving get 503, idle connections close.
  void StopReading() { gate_.StopReading(); }
  // Waits until every admitted connection is closed, or `limit` has passed; false then.
  bool WaitForConnections(std::chrono::milliseconds limit) {
    return gate_.WaitForConnections(limit);
  }
  // Writes still waiting on a client fail; then waits until every connection is closed.
  void CutAndJoin() { gate_.Stop(); }
  bool stopping() const { return gate_.stopping(); }

  // When reading `connection`'s request failed for a reason the client should hear: a 408 when
  // it was not received within the read timeout, a 503 when the server stopped reading.
  std::optional<ApiError> ReadFailure(const ServerConnection& connection) const;

 private:
  // On the accept thread (see the task queue in the .cc): admits or refuses `sock`.
  bool process_and_close_socket(socket_t sock) override;
  // On the connection's own thread: its requests, then its close.
  void Serve(socket_t sock, std::chrono::steady_clock::time_point accepted);

  const Limits limits_;
  const std::function<void(const std::string&)> log_;
  ConnectionGate gate_;
};

}  // namespace pinfer
