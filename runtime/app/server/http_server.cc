#include "runtime/app/server/http_server.h"

#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iterator>
#include <random>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "runtime/app/server/gated_http_server.h"
#include "runtime/app/server/generation_plan.h"
#include "runtime/app/server/openai_protocol.h"
#include "runtime/app/server/request_checks.h"
#include "runtime/app/server/server_connection.h"
#include "runtime/app/server/tokenize_endpoints.h"
#include "runtime/app/server/webui/webui.h"
#include "runtime/common/cli_common.h"
#include "runtime/exec/ffn_report.h"

namespace pinfer {
namespace {

// The methods each routed path answers (Route() below registers the same), so that a known path
// asked with another method gets 405 and an Allow header instead of 404. GET handlers answer
// HEAD too (cpp-httplib). `webui`: the chat page's files are routed (--no-webui: they are not).
const char* MethodsOfPath(const std::string& path, bool webui) {
  if (path == "/v1/completions" || path == "/v1/chat/completions" || path == "/tokenize" ||
      path == "/detokenize") {
    return "POST";
  }
  if (path == "/v1/models" || path.starts_with("/v1/models/") || path == "/health" ||
      path == "/props" || path == "/metrics" || (webui && IsWebUiPath(path))) {
    return "GET, HEAD";
  }
  return nullptr;
}

using nlohmann::json;

constexpr char kLog[] = "pi-server: ";
// How often a waiting handler looks at its connection when no text comes.
constexpr std::chrono::milliseconds kPoll(100);
// Connections beyond the requests the scheduler may hold, at the least: /health, /v1/models and
// the immediate errors (401, 413, 503...) of requests that cannot be held.
constexpr int kSpareConnections = 8;
// At shutdown, once the generations are over, how long responses may still take to be written.
constexpr std::chrono::seconds kShutdownWriteAllowance(2);
// A body over --max-body sent in chunks is read and thrown away up to this size; beyond, the
// connection is dropped.
constexpr uint64_t kMaxDiscardedBody = uint64_t{64} << 20;

void SendJson(httplib::Response& res, const json& body, int status = 200) {
  res.status = status;
  res.set_content(DumpJson(body), "application/json");
}

void SendError(httplib::Response& res, const ApiError& error) {
  res.status = error.http_status;
  res.set_content(error.Body(), "application/json");
}

std::string ModelStem(const std::string& path) {
  std::string name = std::filesystem::path(path).filename().string();
  if (absl::EndsWith(name, ".pi")) name.resize(name.size() - 3);
  return name;
}

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::chrono::milliseconds Milliseconds(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0 + 0.5));
}

// "address:port" of the client; from the socket when cpp-httplib has not filled the request's
// (it does so after the headers).
std::string ClientOf(const httplib::Request& req) {
  if (!req.remote_addr.empty()) return absl::StrCat(req.remote_addr, ":", req.remote_port);
  std::string ip = "?";
  int port = -1;
  if (const ServerConnection* connection = ServerConnection::Current()) {
    connection->get_remote_ip_and_port(ip, port);
  }
  return absl::StrCat(ip, ":", port);
}

uint64_t Mix(uint64_t x) {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

absl::Status ValidateServerOptions(const ServerOptions& options) {
  if (options.host.empty()) return absl::InvalidArgumentError("--host must not be empty");
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--port must be in [0, 65535] (0: any free port), got ", options.port));
  }
  // Every slot and every queued request holds a connection (and its thread).
  if (options.scheduler.parallel < 1 || options.scheduler.parallel > 256) {
    return absl::InvalidArgumentError(
        absl::StrCat("--parallel must be 1 to 256 slots, got ", options.scheduler.parallel));
  }
  if (options.scheduler.queue_length < 0 || options.scheduler.queue_length > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("--queue must be 0 to 1024 requests, got ", options.scheduler.queue_length));
  }
  const int held = options.scheduler.parallel + options.scheduler.queue_length;
  if (options.max_connections < held + kSpareConnections || options.max_connections > 65536) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max-connections must be ", held + kSpareConnections, " (--parallel + --queue + ",
        kSpareConnections, ") to 65536, got ", options.max_connections));
  }
  if (!(options.read_timeout_seconds >= 0.1 && options.read_timeout_seconds <= 3600)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--read-timeout must be 0.1 to 3600 seconds, got ", options.read_timeout_seconds));
  }
  for (const char c : options.api_key) {
    if (c <= ' ' || c > '~' || c == '%') {
      return absl::InvalidArgumentError(
          "--api-key must be printable ASCII without spaces or '%' (it is sent as 'Authorization: "
          "Bearer <key>')");
    }
  }
  if (options.max_body_bytes < 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-body must be at least 1K, got ", options.max_body_bytes, " bytes"));
  }
  if (options.max_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-tokens must be 1 or more, got ", options.max_tokens));
  }
  if (!(options.timeout_seconds > 0 && options.timeout_seconds <= 86400)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--timeout must be more than 0 and at most 86400 seconds, got ", options.timeout_seconds));
  }
  if (!(options.shutdown_grace_seconds >= 0 && options.shutdown_grace_seconds <= 3600)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--shutdown-grace must be 0 to 3600 seconds, got ", options.shutdown_grace_seconds));
  }
  if (!options.chat_template.empty()) {
    absl::StatusOr<ChatFormat> format = ParseChatFormat(options.chat_template);
    if (!format.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--chat-template: ", format.status().message()));
    }
  }
  return absl::OkStatus();
}

PiServer::PiServer(const Tokenizer& tokenizer, const ServerOptions& options,
                   ChatTemplate chat_template)
    : tokenizer_(tokenizer), options_(options), chat_template_(chat_template) {}

absl::StatusOr<std::unique_ptr<PiServer>> PiServer::Create(Executor& executor,
                                                           const Tokenizer& tokenizer,
                                                           const SessionOptions& session_options,
                                                           const ServerOptions& options) {
  if (absl::Status s = ValidateServerOptions(options); !s.ok()) return s;
  absl::StatusOr<ChatTemplate> chat_template =
      ChatTemplate::ForVocabulary(tokenizer.vocabulary(), options.chat_template);
  if (!chat_template.ok()) return chat_template.status();
  std::unique_ptr<PiServer> server(new PiServer(tokenizer, options, *chat_template));
  server->model_name_ =
      options.model_name.empty() ? ModelStem(executor.model().path()) : options.model_name;
  absl::StatusOr<std::unique_ptr<SlotScheduler>> scheduler =
      SlotScheduler::Create(executor, tokenizer, session_options, options.scheduler);
  if (!scheduler.ok()) return scheduler.status();
  server->scheduler_ = *std::move(scheduler);
  server->ffn_mode_ = FfnMode(executor);
  server->id_salt_ = std::random_device{}() ^ (static_cast<uint64_t>(std::random_device{}()) << 32);
  GatedHttpServer::Limits limits;
  limits.max_connections = options.max_connections;
  limits.read_timeout = Milliseconds(options.read_timeout_seconds);
  PiServer* self = server.get();
  server->http_ = std::make_unique<GatedHttpServer>(limits, [self](const std::string& line) {
    if (self->options_.log_requests) self->Log(line);
  });
  server->Route();
  return server;
}

PiServer::~PiServer() { Shutdown(std::chrono::milliseconds(0)); }

absl::Status PiServer::Start() {
  if (absl::Status s = ConnectionGate::ReserveDescriptors(options_.max_connections); !s.ok()) {
    return s;
  }
  http_->set_payload_max_length(options_.max_body_bytes);
  http_->set_keep_alive_timeout(2);  // an idle connection holds a thread and a place
  // cpp-httplib sets SO_REUSEPORT by default, which lets a second server bind the same port and
  // share its connections; SO_REUSEADDR only allows a restart over connections in TIME_WAIT.
  http_->set_socket_options([](socket_t socket) {
    int yes = 1;
    setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  if (options_.port == 0) {
    port_ = http_->bind_to_any_port(options_.host);
  } else {
    port_ = http_->bind_to_port(options_.host, options_.port) ? options_.port : -1;
  }
  if (port_ <= 0) {
    return absl::UnavailableError(absl::StrCat("--host ", options_.host, " --port ", options_.port,
                                               ": cannot listen there (address in use, or not "
                                               "an address of this machine?)"));
  }
  http_->WidenListenBacklog();
  created_ = static_cast<int64_t>(std::time(nullptr));
  listener_ = std::thread([this] { http_->listen_after_bind(); });
  // stop() only stops a server that is running: wait for it, so that an immediate Shutdown() is
  // not lost.
  while (!http_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return absl::OkStatus();
}

void PiServer::Shutdown(std::chrono::milliseconds grace) {
  std::lock_guard<std::mutex> lock(shutdown_mutex_);
  if (shut_down_) return;
  shut_down_ = true;
  shutting_down_ = true;
  // A server whose Create failed half way (no slots: not enough memory) has nothing to stop.
  if (scheduler_ == nullptr || http_ == nullptr) return;
  scheduler_->Drain(grace);
  // Every generation is over. Requests still arriving (slow clients among them) get 503, idle
  // connections close, and the handlers may write what they hold, for a bounded time: then writes
  // to clients that do not read fail. Only then does the listener stop, since cpp-httplib ends a
  // stream whose server is stopped without its last chunk.
  http_->StopReading();
  http_->WaitForConnections(kShutdownWriteAllowance);
  if (listener_.joinable()) {
    http_->stop();
    listener_.join();
  }
  http_->CutAndJoin();
}

std::string PiServer::NextId(const char* prefix) {
  return absl::StrFormat("%s-%016x", prefix, Mix(id_salt_ + next_id_.fetch_add(1)));
}

bool PiServer::Authorized(const httplib::Request& req, httplib::Response& res) const {
  if (options_.api_key.empty()) return true;
  const KeyCheck check = CheckApiKey(req.headers, options_.api_key);
  if (check == KeyCheck::kAccepted) return true;
  ApiError error;
  error.http_status = 401;
  error.code = "invalid_api_key";
  error.message = check == KeyCheck::kMissing
                      ? "no API key: send the header 'Authorization: Bearer <key>'"
                      : "incorrect API key in the header 'Authorization: Bearer <key>'";
  SendError(res, error);
  res.set_header("WWW-Authenticate", "Bearer");
  return false;
}

void PiServer::Route() {
  http_->Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res,
                                        const httplib::ContentReader& reader) {
    HandleCompletion(req, res, reader, static_cast<int>(Endpoint::kCompletions));
  });
  http_->Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res,
                                             const httplib::ContentReader& reader) {
    HandleCompletion(req, res, reader, static_cast<int>(Endpoint::kChatCompletions));
  });
  http_->Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
    HandleModels(req, res);
  });
  http_->Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
    HandleModels(req, res);
  });
  http_->Get("/health", [this](const httplib::Request& req, httplib::Response& res) {
    HandleHealth(req, res);
  });
  http_->Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res,
                                  const httplib::ContentReader& reader) {
    HandleTokenize(req, res, reader, /*detokenize=*/false);
  });
  http_->Post("/detokenize", [this](const httplib::Request& req, httplib::Response& res,
                                    const httplib::ContentReader& reader) {
    HandleTokenize(req, res, reader, /*detokenize=*/true);
  });
  http_->Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) {
    if (!Authorized(req, res)) return;
    res.set_content(metrics_.Render(scheduler_->stats()), kMetricsContentType);
  });
  // The chat page and what it shows of the server (webui/webui.h).
  http_->Get("/props", [this](const httplib::Request& req, httplib::Response& res) {
    if (!Authorized(req, res)) return;
    SendJson(res, PropsJson({model_name_, scheduler_->context_length(), ffn_mode_,
                             options_.scheduler.parallel, scheduler_->stats().busy_slots,
                             options_.max_tokens}));
  });
  if (options_.webui) RouteWebUi(*http_);
  // Before any body is read: refuse what is framed wrong, at once (request_checks.h).
  http_->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    return RefuseByFraming(req, res) ? httplib::Server::HandlerResponse::Handled
                                     : httplib::Server::HandlerResponse::Unhandled;
  });
  // "Expect: 100-continue": the same check, before the client is told to send its body.
  http_->set_expect_100_continue_handler(
      [this](const httplib::Request& req, httplib::Response& res) {
        return RefuseByFraming(req, res) ? res.status : 100;
      });
  // Every response passes here once, with its final status, just before it is written: counted
  // for /metrics. A connection that will not carry another request says so.
  http_->set_post_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    metrics_.CountResponse(req.path, res.status);
    ServerConnection* connection = ServerConnection::Current();
    if (connection == nullptr) return;
    if (http_->stopping()) connection->CloseAfterResponse();
    if (!connection->close_after_response()) return;
    res.headers.erase("Keep-Alive");
    res.headers.erase("Connection");
    res.set_header("Connection", "close");
  });
  // Whatever cpp-httplib answers by itself (unknown path, a body over the limit, a malformed
  // request) gets an OpenAI-style body too.
  http_->set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    // cpp-httplib answers 400 to headers (or a body it reads itself) that did not arrive in time.
    ServerConnection* connection = ServerConnection::Current();
    if (connection != nullptr) {
      if (const std::optional<ApiError> failure = http_->ReadFailure(*connection)) {
        SendError(res, *failure);
        connection->CloseAfterResponse();
        LogRequest(ClientOf(req), req.method, req.path,
                   absl::StrCat(failure->http_status, " ", failure->message));
        return;
      }
    }
    ApiError error;
    error.http_status = res.status;
    const char* methods = MethodsOfPath(req.path, options_.webui);
    if (res.status == 404 && methods != nullptr) {
      res.status = error.http_status = 405;
      error.message = absl::StrCat(req.path, " answers ", methods, ", not ", req.method);
      error.code = "method_not_allowed";
      res.set_header("Allow", methods);
    } else if (res.status == 404) {
      error.message = absl::StrCat("unknown endpoint ", req.method, " ", req.path);
      error.code = "unknown_url";
    } else if (res.status == 413) {
      error.message = "the request body is larger than the server accepts (--max-body)";
      error.code = "payload_too_large";
    } else {
      error.message = absl::StrCat("HTTP ", res.status, " for ", req.method, " ", req.path);
      if (res.status >= 500) error.type = "server_error";
    }
    res.set_content(error.Body(), "application/json");
  });
  http_->set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr) {
        ApiError error;
        error.http_status = 500;
        error.type = "server_error";
        error.message = absl::StrCat("internal error while handling ", req.method, " ", req.path);
        SendError(res, error);
      });
}

bool PiServer::RefuseByFraming(const httplib::Request& req, httplib::Response& res) const {
  const FramingVerdict verdict = CheckFraming(req, options_.max_body_bytes);
  ServerConnection* connection = ServerConnection::Current();
  if (verdict.close_after_response && connection != nullptr) connection->CloseAfterResponse();
  if (!verdict.error) return false;
  SendError(res, *verdict.error);
  if (verdict.error->http_status == 405) res.set_header("Allow", kAllowedMethods);
  LogRequest(ClientOf(req), req.method, req.path,
             absl::StrCat(verdict.error->http_status, " ", verdict.error->message));
  return true;
}

void PiServer::HandleHealth(const httplib::Request&, httplib::Response& res) {
  const SchedulerStats s = scheduler_->stats();
  json body{{"status", shutting_down_ ? "shutting_down" : "ok"},
            {"model", model_name_},
            {"slots", s.slots},
            {"slots_busy", s.busy_slots},
            {"queued", s.queued},
            {"finished", s.finished}};
  SendJson(res, body, shutting_down_ ? 503 : 200);
}

void PiServer::HandleModels(const httplib::Request& req, httplib::Response& res) {
  if (!Authorized(req, res)) return;
  const json model{
      {"id", model_name_}, {"object", "model"}, {"created", created_}, {"owned_by", "pinfer"}};
  if (req.matches.size() > 1) {
    if (req.matches[1].str() != model_name_) {
      ApiError error;
      error.http_status = 404;
      error.code = "model_not_found";
      error.message = absl::StrCat("the model '", req.matches[1].str(),
                                   "' does not exist; this server runs '", model_name_, "'");
      SendError(res, error);
      return;
    }
    SendJson(res, model);
    return;
  }
  SendJson(res, json{{"object", "list"}, {"data", json::array({model})}});
}

void PiServer::HandleTokenize(const httplib::Request& req, httplib::Response& res,
                              const httplib::ContentReader& reader, bool detokenize) {
  const std::string client = ClientOf(req);
  auto fail = [&](const ApiError& error) {
    SendError(res, error);
    LogRequest(client, req.method, req.path, absl::StrCat(error.http_status, " ", error.message));
  };
  std::string body;
  ApiError body_error;
  const bool read = ReadBody(reader, &body, &body_error);
  if (!Authorized(req, res)) {  // after reading, as for the completions
    LogRequest(client, req.method, req.path, "401");
    return;
  }
  if (!read) return fail(body_error);
  const json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return fail(InvalidRequest("the request body is not valid JSON", "invalid_json"));
  }
  std::variant<json, ApiError> reply =
      detokenize ? DetokenizeReply(parsed, tokenizer_) : TokenizeReply(parsed, tokenizer_);
  if (const ApiError* error = std::get_if<ApiError>(&reply)) return fail(*error);
  SendJson(res, std::get<json>(reply));
  LogRequest(client, req.method, req.path, "200");
}

bool PiServer::ReadBody(const httplib::ContentReader& reader, std::string* body,
                        ApiError* error) const {
  // A chunked body (its length is not known before) is read even when it is too large (then
  // discarded, up to a bound and within the read timeout), so that the connection stays usable and
  // a client still sending gets the error rather than a reset. (A Content-Length over the limit
  // is refused before: RefuseByFraming.)
  bool too_large = false;
  uint64_t discarded = 0;
  const bool read = reader([&](const char* data, size_t size) {
    if (too_large || body->size() + size > options_.max_body_bytes) {
      too_large = true;
      discarded += size;
      return discarded <= kMaxDiscardedBody;
    }
    body->append(data, size);
    return true;
  });
  if (read && !too_large) return true;
  ServerConnection* connection = ServerConnection::Current();
  if (!read) connection->CloseAfterResponse();  // the rest of the body was not read
  if (const std::optional<ApiError> failure = http_->ReadFailure(*connection)) {
    *error = *failure;  // it did not arrive in time, or the server stops
  } else if (too_large) {
    error->http_status = 413;
    error->code = "payload_too_large";
    error->message = absl::StrCat("the request body is larger than the server's limit of ",
                                  FormatBytes(options_.max_body_bytes), " (--max-body)");
  } else {
    *error = InvalidRequest("could not read the request body");
  }
  return false;
}

void PiServer::Log(const std::string& line) const {
  if (options_.log) {
    options_.log(line);
  } else {
    std::fprintf(stderr, "%s%s\n", kLog, line.c_str());
  }
}

void PiServer::LogRequest(const std::string& client, const std::string& method,
                          const std::string& path, const std::string& outcome) const {
  if (!options_.log_requests) return;
  Log(absl::StrCat(client, " ", method, " ", path, ": ", outcome));
}

std::string PiServer::DescribeFinished(const Generation::Progress& p, Clock::time_point start,
                                       const char* status) {
  const double seconds = SecondsSince(start);
  return absl::StrFormat("%s, %d prompt + %d generated tokens in %.2f s (%.1f tokens/s), finish %s",
                         status, p.prompt_tokens, p.completion_tokens, seconds,
                         seconds > 0 ? p.completion_tokens / seconds : 0.0,
                         p.status.ok() ? std::string(FinishReasonName(p.finish_reason))
                                       : std::string(p.status.message()));
}

// A streamed response after its handler has returned: cpp-httplib calls Next() until it calls
// sink.done() or returns false (the client is gone, or the server stops), on the thread of the
// connection, which outlives the response.
class PiServer::SseStream {
 public:
  SseStream(PiServer& server, std::shared_ptr<Generation> generation, Endpoint endpoint,
            ResponseHeader header, bool include_usage, const ServerConnection& connection,
            std::vector<std::string> pieces, Generation::Progress progress, Clock::time_point start,
            std::string client, std::string path)
      : server_(server),
        generation_(std::move(generation)),
        endpoint_(endpoint),
        header_(std::move(header)),
        include_usage_(include_usage),
        connection_(connection),
        pieces_(std::move(pieces)),
        last_(std::move(progress)),
        start_(start),
        client_(std::move(client)),
        path_(std::move(path)) {}

  bool Next(httplib::DataSink& sink) {
    if (done_) return false;
    std::string out;
    if (endpoint_ == Endpoint::kChatCompletions && !role_sent_) {
      out += SseEvent(StreamChunk(endpoint_, header_, "", std::nullopt, /*role=*/true));
      role_sent_ = true;
    }
    if (pieces_.empty() && last_.phase != Generation::Phase::kFinished) {
      last_ = generation_->Wait(kPoll);
      pieces_.insert(pieces_.end(), std::make_move_iterator(last_.pieces.begin()),
                     std::make_move_iterator(last_.pieces.end()));
    }
    // An event per token, even for tokens that came while the previous events were written.
    for (const std::string& piece : pieces_) {
      out += SseEvent(StreamChunk(endpoint_, header_, piece, std::nullopt));
    }
    pieces_.clear();
    const bool finished = last_.phase == Generation::Phase::kFinished;
    if (finished) {
      if (!last_.status.ok()) {
        out += SseEvent(ApiErrorFromStatus(last_.status).ToJson());
      } else {
        out += SseEvent(StreamChunk(endpoint_, header_, "", last_.finish_reason));
        if (include_usage_) {
          out += SseEvent(
              StreamUsageChunk(endpoint_, header_, last_.prompt_tokens, last_.completion_tokens,
                               last_.cached_tokens));
        }
      }
      out += kSseDone;
    }
    if (!out.empty() && !sink.write(out.data(), out.size())) {
      generation_->Cancel();
      return false;
    }
    if (finished) {
      done_ = true;
      if (last_.status.ok()) {
        server_.metrics_.CountGeneration(last_.completion_tokens, SecondsSince(start_));
      }
      server_.LogRequest(client_, "POST", path_, DescribeFinished(last_, start_, "200 stream"));
      sink.done();
      return true;
    }
    if (out.empty() && connection_.ClientGone()) {
      generation_->Cancel();
      return false;
    }
    return true;
  }

  // The response is over: written, or abandoned (the client went away, or a shutdown cut it).
  void Release(bool success) {
    if (!success) generation_->Cancel();
    if (done_) return;  // logged
    const bool cut = server_.shutting_down_;
    server_.LogRequest(client_, "POST", path_,
                       absl::StrFormat("%s, after %d generated tokens in %.2f s",
                                       cut ? "the stream was cut by the shutdown"
                                           : "the client went away while streaming",
                                       last_.completion_tokens, SecondsSince(start_)));
  }

 private:
  PiServer& server_;
  const std::shared_ptr<Generation> generation_;
  const Endpoint endpoint_;
  const ResponseHeader header_;
  const bool include_usage_;
  const ServerConnection& connection_;
  std::vector<std::string> pieces_;  // received, not yet sent
  Generation::Progress last_;
  bool role_sent_ = false;
  bool done_ = false;
  const Clock::time_point start_;
  const std::string client_;
  const std::string path_;
};

void PiServer::HandleCompletion(const httplib::Request& req, httplib::Response& res,
                                const httplib::ContentReader& reader, int endpoint_value) {
  const Endpoint endpoint = static_cast<Endpoint>(endpoint_value);
  const Clock::time_point start = Clock::now();
  const std::string client = ClientOf(req);
  auto fail = [&](const ApiError& error) {
    SendError(res, error);
    LogRequest(client, req.method, req.path, absl::StrCat(error.http_status, " ", error.message));
  };
  // Served by GatedHttpServer, always; the handler watches its client through it.
  const ServerConnection* connection = ServerConnection::Current();
  if (connection == nullptr) {
    ApiError error = ApiErrorFromStatus(absl::InternalError("the request has no connection"));
    return fail(error);
  }

  std::string body;
  ApiError body_error;
  const bool read = ReadBody(reader, &body, &body_error);
  if (!Authorized(req, res)) {  // checked after reading, for the same reason
    LogRequest(client, req.method, req.path, "401");
    return;
  }
  if (!read) return fail(body_error);
  if (shutting_down_) {
    return fail(ApiErrorFromStatus(absl::UnavailableError("the server is shutting down")));
  }
  const json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return fail(InvalidRequest("the request body is not valid JSON", "invalid_json"));
  }
  absl::StatusOr<CompletionRequest> request = ParseCompletionRequest(parsed, endpoint);
  if (!request.ok()) return fail(InvalidRequest(std::string(request.status().message())));
  // One model serves every name, unless --strict-model (then PlanGeneration refuses another).
  if (!options_.strict_model) request->model.clear();

  GenerationLimits limits;
  limits.model_name = model_name_;
  limits.context_length = scheduler_->context_length();
  limits.max_tokens = options_.max_tokens;
  std::variant<GenerationRequest, ApiError> plan =
      PlanGeneration(*request, tokenizer_, chat_template_, limits);
  if (const ApiError* error = std::get_if<ApiError>(&plan)) return fail(*error);
  GenerationRequest& generation_request = std::get<GenerationRequest>(plan);
  if (!request->seed_given) {
    generation_request.sampling.seed = Mix(id_salt_ ^ Mix(next_id_.fetch_add(1)));
  }
  generation_request.deadline =
      start + std::chrono::duration_cast<Clock::duration>(
                  std::chrono::duration<double>(options_.timeout_seconds));
  absl::StatusOr<std::shared_ptr<Generation>> submitted =
      scheduler_->Submit(std::move(generation_request));
  if (!submitted.ok()) return fail(ApiErrorFromStatus(submitted.status()));
  std::shared_ptr<Generation> generation = *std::move(submitted);

  // Wait for a slot (or the end), watching the connection: errors until then are still HTTP
  // errors, even for a stream.
  std::vector<std::string> pieces;
  Generation::Progress progress;
  do {
    progress = generation->Wait(kPoll);
    pieces.insert(pieces.end(), progress.pieces.begin(), progress.pieces.end());
    if (progress.phase == Generation::Phase::kQueued && connection->ClientGone()) {
      generation->Cancel();
      return LogRequest(client, req.method, req.path, "the client went away while queued");
    }
  } while (progress.phase == Generation::Phase::kQueued);
  if (progress.phase == Generation::Phase::kFinished && !progress.status.ok()) {
    return fail(ApiErrorFromStatus(progress.status));
  }

  ResponseHeader header;
  header.id = NextId(endpoint == Endpoint::kCompletions ? "cmpl" : "chatcmpl");
  header.created = static_cast<int64_t>(std::time(nullptr));
  header.model = model_name_;
  if (request->stream) {
    auto stream = std::make_shared<SseStream>(*this, generation, endpoint, header,
                                              request->include_usage, *connection,
                                              std::move(pieces), progress, start, client, req.path);
    res.status = 200;
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [stream](size_t, httplib::DataSink& sink) { return stream->Next(sink); },
        [stream](bool success) { stream->Release(success); });
    return;
  }

  while (progress.phase != Generation::Phase::kFinished) {
    if (connection->ClientGone()) {
      generation->Cancel();
      return LogRequest(client, req.method, req.path, "the client went away");
    }
    progress = generation->Wait(kPoll);
    pieces.insert(pieces.end(), progress.pieces.begin(), progress.pieces.end());
  }
  if (!progress.status.ok()) return fail(ApiErrorFromStatus(progress.status));
  metrics_.CountGeneration(progress.completion_tokens, SecondsSince(start));
  CompletionOutcome outcome;
  outcome.text = absl::StrJoin(pieces, "");
  outcome.finish_reason = progress.finish_reason;
  outcome.prompt_tokens = progress.prompt_tokens;
  outcome.completion_tokens = progress.completion_tokens;
  outcome.cached_tokens = progress.cached_tokens;
  SendJson(res, CompletionResponse(endpoint, header, outcome));
  LogRequest(client, req.method, req.path, DescribeFinished(progress, start, "200"));
}

}  // namespace pinfer
