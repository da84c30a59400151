// pi-server's HTTP side: cpp-httplib routes for OpenAI's API over a SlotScheduler.
//
//   POST /v1/completions, /v1/chat/completions   JSON or server-sent events ("stream": true)
//   GET  /v1/models, /v1/models/{id}             the one model this server runs
//   GET  /health                                 {"status": "ok", slots...}; 503 while shutting
//   down
//   GET  /props, and the chat page at /          webui/webui.h
//   POST /tokenize, /detokenize                  llama-server's bodies (tokenize_endpoints.h)
//   GET  /metrics                                Prometheus text format (server_metrics.h)
//
// Each connection is served on a thread of its own (GatedHttpServer), up to --max-connections;
// beyond, new connections get 503 at once. A request must arrive whole, headers and body, within
// --read-timeout (else 408), so that a slow client holds its thread for a bounded time and never
// one that another request, /health or a running generation needs. Before the body is read, its
// framing is checked (request_checks.h): a request the server refuses (405, 411, 413, 400) is
// answered at once and its connection closed. The handler then checks the API key, reads the body
// (bounded), parses and checks the request, tokenizes the prompt, submits it to the scheduler and
// waits: until its generation is admitted to a slot (so that a request that times out in the
// queue, or meets a shutdown, still gets an HTTP error), then until it is finished (JSON) or,
// streaming, passing on text as it comes, an event per generated token. While it waits it watches
// its connection: a client that goes away cancels its generation and frees its slot (and is
// logged).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/app/server/openai_protocol.h"
#include "runtime/app/server/server_metrics.h"
#include "runtime/app/server/slot_scheduler.h"
#include "runtime/exec/executor.h"
#include "runtime/text/chat_template.h"
#include "runtime/text/tokenizer.h"

namespace httplib {
struct Request;
struct Response;
class ContentReader;
}  // namespace httplib

namespace pinfer {

class GatedHttpServer;

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port (see PiServer::port())
  SchedulerOptions scheduler;
  // Required as "Authorization: Bearer <key>"; empty: no authentication. Printable ASCII without
  // spaces or '%' (cpp-httplib percent-decodes header values: a key with '%' could never match).
  std::string api_key;
  uint64_t max_body_bytes = 1 << 20;  // larger request bodies get 413
  // Connections open at once (each served on a thread of its own); more get 503. At least the
  // requests the scheduler may hold (parallel + queue) and a few more for /health and errors.
  int max_connections = 256;
  // The most a client may take to send a request, headers and body together; slower: 408.
  double read_timeout_seconds = 30;
  // The most tokens a request may generate, and what it generates when it does not say (or less,
  // to fit the context).
  int64_t max_tokens = 2048;
  double timeout_seconds = 600;        // a request's deadline, queue wait included
  double shutdown_grace_seconds = 10;  // running generations may finish within it
  std::string chat_template;           // "llama2" or "chatml"; empty: the model's, else chatml
  std::string model_name;              // the id clients use; empty: the model's file name stem
  bool log_requests = true;            // one line per request
  bool webui = true;                   // GET / serves the chat page (webui/webui.h); --no-webui
  // A request naming another model gets 404 (--strict-model). Off: any "model" is served by the
  // one model, as llama-server does (clients often send a fixed name).
  bool strict_model = false;
  // Where log lines go (without "pi-server: " or a newline); empty: stderr with both.
  std::function<void(const std::string& line)> log;
};

// Checks values that do not depend on the model; the message names the flag.
absl::Status ValidateServerOptions(const ServerOptions& options);

class PiServer {
 public:
  // The executor and tokenizer must outlive the server. Creates the slots (sessions with
  // `session_options`).
  static absl::StatusOr<std::unique_ptr<PiServer>> Create(Executor& executor,
                                                          const Tokenizer& tokenizer,
                                                          const SessionOptions& session_options,
                                                          const ServerOptions& options);
  ~PiServer();  // Shutdown() with no grace if still running
  PiServer(const PiServer&) = delete;
  PiServer& operator=(const PiServer&) = delete;

  // Binds host:port and serves on a background thread. Fails when the address cannot be bound.
  absl::Status Start();
  int port() const { return port_; }
  const std::string& model_name() const { return model_name_; }
  const ChatTemplate& chat_template() const { return chat_template_; }
  SchedulerStats stats() const { return scheduler_->stats(); }
  int64_t context_length() const { return scheduler_->context_length(); }
  uint64_t kv_cache_bytes() const { return scheduler_->kv_cache_bytes(); }

  // Graceful stop: new requests get 503, queued ones too; running generations finish within
  // `grace` (then they are cut, finish reason "length"); requests still arriving get 503 and idle
  // connections close; responses get a few seconds more to be written (a client that does not read
  // is cut); then the listening socket closes and the connections' threads end. Idempotent.
  void Shutdown(std::chrono::milliseconds grace);

 private:
  PiServer(const Tokenizer& tokenizer, const ServerOptions& options, ChatTemplate chat_template);
  void Route();
  class SseStream;
  void HandleCompletion(const httplib::Request& req, httplib::Response& res,
                        const httplib::ContentReader& reader, int endpoint);
  // Reads the body, bounded by --max-body and --read-timeout; false with the error to answer
  // (413, 408, 400).
  bool ReadBody(const httplib::ContentReader& reader, std::string* body, ApiError* error) const;
  void Log(const std::string& line) const;
  void LogRequest(const std::string& client, const std::string& method, const std::string& path,
                  const std::string& outcome) const;
  static std::string DescribeFinished(const Generation::Progress& progress, Clock::time_point start,
                                      const char* status);
  // Answers a request whose framing CheckFraming refuses (true), before its body is read.
  bool RefuseByFraming(const httplib::Request& req, httplib::Response& res) const;
  void HandleModels(const httplib::Request& req, httplib::Response& res);
  // POST /tokenize and /detokenize.
  void HandleTokenize(const httplib::Request& req, httplib::Response& res,
                      const httplib::ContentReader& reader, bool detokenize);
  void HandleHealth(const httplib::Request& req, httplib::Response& res);
  bool Authorized(const httplib::Request& req, httplib::Response& res) const;
  std::string NextId(const char* prefix);

  const Tokenizer& tokenizer_;
  const ServerOptions options_;
  const ChatTemplate chat_template_;
  std::string model_name_;
  std::string ffn_mode_;  // FfnMode() of the executor, for /props
  int64_t created_ = 0;  // when the server started (the model's "created" in /v1/models)
  std::unique_ptr<SlotScheduler> scheduler_;
  ServerMetrics metrics_;
  std::unique_ptr<GatedHttpServer> http_;
  std::thread listener_;
  int port_ = -1;
  std::atomic<bool> shutting_down_{false};
  std::atomic<uint64_t> next_id_{0};
  uint64_t id_salt_ = 0;
  std::mutex shutdown_mutex_;
  bool shut_down_ = false;
};

}  // namespace pinfer
