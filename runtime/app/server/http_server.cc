#include "runtime/app/server/http_server.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <random>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "runtime/app/cli_common.h"
#include "runtime/app/server/connection_probe.h"
#include "runtime/app/server/openai_protocol.h"

namespace pinfer {
namespace {

using nlohmann::json;

constexpr char kLog[] = "pi-server: ";
// How often a waiting handler looks at its connection when no text comes.
constexpr std::chrono::milliseconds kPoll(100);
// HTTP worker threads beyond the requests the scheduler may hold: /health, /v1/models and the
// immediate errors (401, 413, 503...) of requests that cannot be held.
constexpr int kSpareHttpThreads = 8;
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

ApiError InvalidRequest(std::string message, std::string code = "", std::string param = "") {
  ApiError error;
  error.http_status = 400;
  error.message = std::move(message);
  error.code = std::move(code);
  error.param = std::move(param);
  return error;
}

std::string ModelStem(const std::string& path) {
  std::string name = std::filesystem::path(path).filename().string();
  if (absl::EndsWith(name, ".pi")) name.resize(name.size() - 3);
  return name;
}

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Compares without returning early, so that the time taken does not tell how much of a guessed key
// was right.
bool SameSecret(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

uint64_t Mix(uint64_t x) {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Everything a streamed response needs after its handler has returned.
struct StreamState {
  std::shared_ptr<Generation> generation;
  Endpoint endpoint = Endpoint::kCompletions;
  ResponseHeader header;
  bool include_usage = false;
  std::unique_ptr<ConnectionProbe> probe;
  std::string text;  // received, not yet sent
  Generation::Progress last;
  bool role_sent = false;
  bool done = false;
  Clock::time_point start;
  std::string client;  // for the log
  std::string path;
};

}  // namespace

absl::Status ValidateServerOptions(const ServerOptions& options) {
  if (options.host.empty()) return absl::InvalidArgumentError("--host must not be empty");
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--port must be in [0, 65535] (0: any free port), got ", options.port));
  }
  if (options.scheduler.parallel < 1 || options.scheduler.parallel > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("--parallel must be 1 to 1024 slots, got ", options.scheduler.parallel));
  }
  if (options.scheduler.queue_length < 0 || options.scheduler.queue_length > 65536) {
    return absl::InvalidArgumentError(
        absl::StrCat("--queue must be 0 to 65536 requests, got ", options.scheduler.queue_length));
  }
  if (options.max_body_bytes < 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-body must be at least 1K, got ", options.max_body_bytes, " bytes"));
  }
  if (options.max_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-tokens must be 1 or more, got ", options.max_tokens));
  }
  if (!(options.timeout_seconds > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--timeout must be a positive number of seconds, got ", options.timeout_seconds));
  }
  if (!(options.shutdown_grace_seconds >= 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--shutdown-grace must be 0 or more seconds, got ", options.shutdown_grace_seconds));
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
  server->id_salt_ = std::random_device{}() ^ (static_cast<uint64_t>(std::random_device{}()) << 32);
  server->http_ = std::make_unique<httplib::Server>();
  server->Route();
  return server;
}

PiServer::~PiServer() { Shutdown(std::chrono::milliseconds(0)); }

absl::Status PiServer::Start() {
  const size_t threads = static_cast<size_t>(options_.scheduler.parallel) +
                         static_cast<size_t>(options_.scheduler.queue_length) + kSpareHttpThreads;
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http_->set_payload_max_length(options_.max_body_bytes);
  http_->set_keep_alive_timeout(2);  // idle connections hold a worker thread and delay shutdown
  http_->set_read_timeout(30);
  http_->set_write_timeout(30);
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
  created_ = static_cast<int64_t>(std::time(nullptr));
  listener_ = std::thread([this] { http_->listen_after_bind(); });
  return absl::OkStatus();
}

void PiServer::Shutdown(std::chrono::milliseconds grace) {
  std::lock_guard<std::mutex> lock(shutdown_mutex_);
  if (shut_down_) return;
  shut_down_ = true;
  shutting_down_ = true;
  scheduler_->Drain(grace);
  {
    // Every generation is over; let the handlers write what they hold (bounded: a client that
    // does not read is cut by the write timeout).
    std::unique_lock<std::mutex> responses(responses_mutex_);
    responses_done_.wait_for(responses, std::chrono::seconds(35),
                             [this] { return responses_in_flight_ == 0; });
  }
  if (listener_.joinable()) {
    http_->stop();
    listener_.join();
  }
}

void PiServer::BeginResponse() {
  std::lock_guard<std::mutex> lock(responses_mutex_);
  ++responses_in_flight_;
}

void PiServer::EndResponse() {
  std::lock_guard<std::mutex> lock(responses_mutex_);
  --responses_in_flight_;
  responses_done_.notify_all();
}

std::string PiServer::NextId(const char* prefix) {
  return absl::StrFormat("%s-%016x", prefix, Mix(id_salt_ + next_id_.fetch_add(1)));
}

bool PiServer::Authorized(const httplib::Request& req, httplib::Response& res) const {
  if (options_.api_key.empty()) return true;
  const std::string header = req.get_header_value("Authorization");
  if (SameSecret(header, "Bearer " + options_.api_key)) return true;
  ApiError error;
  error.http_status = 401;
  error.code = "invalid_api_key";
  error.message = header.empty() ? "no API key: send the header 'Authorization: Bearer <key>'"
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
  // Whatever cpp-httplib answers by itself (unknown path, a body over the limit, a malformed
  // request) gets an OpenAI-style body too.
  http_->set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    ApiError error;
    error.http_status = res.status;
    if (res.status == 404) {
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

void PiServer::HandleCompletion(const httplib::Request& req, httplib::Response& res,
                                const httplib::ContentReader& reader, int endpoint_value) {
  const Endpoint endpoint = static_cast<Endpoint>(endpoint_value);
  const Clock::time_point start = Clock::now();
  const std::string client = absl::StrCat(req.remote_addr, ":", req.remote_port);
  BeginResponse();
  // Ends the response when the handler returns, unless a stream took it over.
  struct ResponseGuard {
    PiServer* server;
    bool owned = true;
    ~ResponseGuard() {
      if (owned) server->EndResponse();
    }
  } guard{this};
  auto fail = [&](const ApiError& error) {
    SendError(res, error);
    if (options_.log_requests) {
      std::fprintf(stderr, "%s%s %s %s: %d %s\n", kLog, client.c_str(), req.method.c_str(),
                   req.path.c_str(), error.http_status, error.message.c_str());
    }
  };

  // The body is read even when the key is wrong or it is too large (then discarded, up to a
  // bound), so that the connection stays usable and a client still sending gets the error rather
  // than a reset. (cpp-httplib discards a body whose Content-Length is over the limit itself.)
  std::string body;
  bool too_large = false;
  uint64_t discarded = 0;
  const bool read = reader([&](const char* data, size_t size) {
    if (too_large || body.size() + size > options_.max_body_bytes) {
      too_large = true;
      discarded += size;
      return discarded <= kMaxDiscardedBody;
    }
    body.append(data, size);
    return true;
  });
  if (!Authorized(req, res)) {
    if (options_.log_requests) {
      std::fprintf(stderr, "%s%s %s %s: 401\n", kLog, client.c_str(), req.method.c_str(),
                   req.path.c_str());
    }
    return;
  }
  if (!read || too_large) {
    if (too_large || res.status == 413) {
      ApiError error;
      error.http_status = 413;
      error.code = "payload_too_large";
      error.message = absl::StrCat("the request body is larger than the server's limit of ",
                                   FormatBytes(options_.max_body_bytes), " (--max-body)");
      fail(error);
    } else {
      fail(InvalidRequest("could not read the request body"));
    }
    if (!read) res.set_header("Connection", "close");  // the rest of the body was not read
    return;
  }
  if (shutting_down_) {
    fail(ApiErrorFromStatus(absl::UnavailableError("the server is shutting down")));
    return;
  }

  const json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    fail(InvalidRequest("the request body is not valid JSON", "invalid_json"));
    return;
  }
  absl::StatusOr<CompletionRequest> request = ParseCompletionRequest(parsed, endpoint);
  if (!request.ok()) {
    fail(InvalidRequest(std::string(request.status().message())));
    return;
  }
  if (!request->model.empty() && request->model != model_name_) {
    ApiError error;
    error.http_status = 404;
    error.code = "model_not_found";
    error.param = "model";
    error.message = absl::StrCat("the model '", request->model,
                                 "' does not exist; this server runs '", model_name_, "'");
    fail(error);
    return;
  }

  // The prompt's tokens, and what ends the reply.
  std::vector<int32_t> prompt;
  std::vector<std::string> stop = request->stop;
  std::vector<int32_t> end_tokens;
  if (endpoint == Endpoint::kChatCompletions) {
    absl::StatusOr<std::vector<int32_t>> tokens =
        chat_template_.Encode(request->messages, tokenizer_);
    if (!tokens.ok()) {
      fail(InvalidRequest(std::string(tokens.status().message()), "", "messages"));
      return;
    }
    prompt = *std::move(tokens);
    for (const std::string& s : chat_template_.StopSequences()) {
      stop.push_back(s);
      if (const int32_t token = tokenizer_.PieceToToken(s); token >= 0) end_tokens.push_back(token);
    }
  } else if (request->prompt_is_tokens) {
    for (int32_t token : request->prompt_tokens) {
      if (token >= tokenizer_.size()) {
        fail(InvalidRequest(absl::StrCat("token id ", token, " is outside the vocabulary of ",
                                         tokenizer_.size(), " tokens"),
                            "", "prompt"));
        return;
      }
    }
    prompt = request->prompt_tokens;
  } else {
    prompt = tokenizer_.Encode(request->prompt, /*add_special=*/true);
  }
  if (prompt.empty()) {
    fail(InvalidRequest("the prompt is empty and the model adds no BOS token", "", "prompt"));
    return;
  }

  // Limits: the reply must fit the context after the prompt.
  const int64_t context = scheduler_->context_length();
  const int64_t prompt_tokens = static_cast<int64_t>(prompt.size());
  int64_t max_tokens = 0;
  if (request->max_tokens) {
    max_tokens = *request->max_tokens;
    if (max_tokens > context) {
      fail(InvalidRequest(
          absl::StrCat("max_tokens ", max_tokens, " is beyond the context of ", context, " tokens"),
          "context_length_exceeded", "max_tokens"));
      return;
    }
    if (max_tokens > options_.max_tokens) {
      fail(InvalidRequest(
          absl::StrCat("max_tokens ", max_tokens, " is more than this server allows (--max-tokens ",
                       options_.max_tokens, ")"),
          "", "max_tokens"));
      return;
    }
    if (prompt_tokens + max_tokens > context) {
      fail(InvalidRequest(
          absl::StrCat("the context is ", context, " tokens; the prompt has ", prompt_tokens,
                       " and max_tokens asks for ", max_tokens, " more"),
          "context_length_exceeded", "max_tokens"));
      return;
    }
  } else {
    if (prompt_tokens >= context) {
      fail(InvalidRequest(absl::StrCat("the prompt has ", prompt_tokens,
                                       " tokens, which leaves no room for a reply in the "
                                       "context of ",
                                       context, " tokens"),
                          "context_length_exceeded",
                          endpoint == Endpoint::kCompletions ? "prompt" : "messages"));
      return;
    }
    max_tokens = std::min(options_.max_tokens, context - prompt_tokens);
  }

  GenerationRequest generation_request;
  generation_request.prompt = std::move(prompt);
  generation_request.sampling = request->sampling;
  if (!request->seed_given) {
    generation_request.sampling.seed = Mix(id_salt_ ^ Mix(next_id_.fetch_add(1)));
  }
  generation_request.max_tokens = max_tokens;
  generation_request.stop = std::move(stop);
  generation_request.end_tokens = std::move(end_tokens);
  generation_request.deadline =
      start + std::chrono::duration_cast<Clock::duration>(
                  std::chrono::duration<double>(options_.timeout_seconds));
  absl::StatusOr<std::shared_ptr<Generation>> submitted =
      scheduler_->Submit(std::move(generation_request));
  if (!submitted.ok()) {
    fail(ApiErrorFromStatus(submitted.status()));
    return;
  }
  std::shared_ptr<Generation> generation = *std::move(submitted);

  // Wait for a slot (or the end), watching the connection.
  auto probe = std::make_unique<ConnectionProbe>(req.local_addr, req.local_port, req.remote_addr,
                                                 req.remote_port);
  std::string text;
  Generation::Progress progress;
  while (true) {
    progress = generation->Wait(kPoll);
    text += progress.text;
    if (progress.phase != Generation::Phase::kQueued) break;
    if (probe->ClientGone()) {
      generation->Cancel();
      return;
    }
  }
  if (progress.phase == Generation::Phase::kFinished && !progress.status.ok()) {
    fail(ApiErrorFromStatus(progress.status));
    return;
  }

  ResponseHeader header;
  header.id = NextId(endpoint == Endpoint::kCompletions ? "cmpl" : "chatcmpl");
  header.created = static_cast<int64_t>(std::time(nullptr));
  header.model = model_name_;
  auto log_done = [this](const std::string& client, const std::string& path,
                         const Generation::Progress& p, Clock::time_point start, const char* how) {
    if (!options_.log_requests) return;
    const double seconds = SecondsSince(start);
    std::fprintf(stderr,
                 "%s%s POST %s: %s, %lld prompt + %lld generated tokens in %.2f s (%.1f "
                 "tokens/s), finish %s\n",
                 kLog, client.c_str(), path.c_str(), how, static_cast<long long>(p.prompt_tokens),
                 static_cast<long long>(p.completion_tokens), seconds,
                 seconds > 0 ? p.completion_tokens / seconds : 0.0,
                 p.status.ok() ? FinishReasonName(p.finish_reason)
                               : std::string(p.status.message()).c_str());
  };

  if (!request->stream) {
    while (progress.phase != Generation::Phase::kFinished) {
      if (probe->ClientGone()) {
        generation->Cancel();
        return;
      }
      progress = generation->Wait(kPoll);
      text += progress.text;
    }
    if (!progress.status.ok()) {
      fail(ApiErrorFromStatus(progress.status));
      return;
    }
    CompletionOutcome outcome;
    outcome.text = std::move(text);
    outcome.finish_reason = progress.finish_reason;
    outcome.prompt_tokens = progress.prompt_tokens;
    outcome.completion_tokens = progress.completion_tokens;
    SendJson(res, CompletionResponse(endpoint, header, outcome));
    log_done(client, req.path, progress, start, "200");
    return;
  }

  auto state = std::make_shared<StreamState>();
  state->generation = generation;
  state->endpoint = endpoint;
  state->header = header;
  state->include_usage = request->include_usage;
  state->probe = std::move(probe);
  state->text = std::move(text);
  state->last = progress;
  state->start = start;
  state->client = client;
  state->path = req.path;
  guard.owned = false;  // the releaser below ends the response
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, state, log_done](size_t, httplib::DataSink& sink) {
        if (state->done) return false;
        std::string out;
        if (state->endpoint == Endpoint::kChatCompletions && !state->role_sent) {
          out += SseEvent(StreamChunk(state->endpoint, state->header, "", std::nullopt, true));
          state->role_sent = true;
        }
        if (state->text.empty() && state->last.phase != Generation::Phase::kFinished) {
          const Generation::Progress p = state->generation->Wait(kPoll);
          state->text += p.text;
          state->last = p;
        }
        if (!state->text.empty()) {
          out += SseEvent(StreamChunk(state->endpoint, state->header, state->text, std::nullopt));
          state->text.clear();
        }
        const bool finished = state->last.phase == Generation::Phase::kFinished;
        if (finished) {
          if (!state->last.status.ok()) {
            out += SseEvent(ApiErrorFromStatus(state->last.status).ToJson());
          } else {
            out += SseEvent(
                StreamChunk(state->endpoint, state->header, "", state->last.finish_reason));
            if (state->include_usage) {
              out += SseEvent(StreamUsageChunk(state->endpoint, state->header,
                                               state->last.prompt_tokens,
                                               state->last.completion_tokens));
            }
          }
          out += kSseDone;
        }
        if (!out.empty() && !sink.write(out.data(), out.size())) {
          state->generation->Cancel();
          return false;
        }
        if (finished) {
          state->done = true;
          log_done(state->client, state->path, state->last, state->start, "200 stream");
          sink.done();
          return true;
        }
        if (out.empty() && state->probe->ClientGone()) {
          state->generation->Cancel();
          return false;
        }
        return true;
      },
      [this, state](bool success) {
        if (!success) state->generation->Cancel();
        EndResponse();
      });
}

}  // namespace pinfer
