#include "runtime/app/server/pi_server.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "runtime/common/cli_common.h"
#include "runtime/text/chat_template.h"

namespace pinfer {
namespace {

constexpr char kLog[] = "pi-server: ";
// The scratch of a step grows with it (about 60 KB per token of a 7B model).
constexpr int64_t kMaxBatchTokens = 16384;

// The write end of the pipe that turns SIGINT/SIGTERM into something the main thread can wait for
// (a signal handler may do little more than write(2)).
std::atomic<int> g_signal_pipe{-1};

extern "C" void OnShutdownSignal(int signal_number) {
  const int fd = g_signal_pipe.load();
  if (fd < 0) return;
  const char byte = static_cast<char>(signal_number);
  const ssize_t ignored = write(fd, &byte, 1);
  (void)ignored;
}

// Installs the handlers for SIGINT and SIGTERM for its lifetime. SA_RESETHAND: a second signal
// gets the default action, so that an impatient user can still end the process at once.
class ShutdownSignals {
 public:
  absl::Status Install() {
    if (pipe2(fds_, O_CLOEXEC) != 0) {
      return absl::InternalError(absl::StrCat("cannot create a pipe: ", std::strerror(errno)));
    }
    g_signal_pipe = fds_[1];
    struct sigaction action = {};
    action.sa_handler = OnShutdownSignal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
    installed_ = true;
    return absl::OkStatus();
  }
  // Blocks until a signal arrives; returns its number.
  int Wait() {
    char byte = 0;
    while (read(fds_[0], &byte, 1) < 0 && errno == EINTR) {
    }
    return static_cast<unsigned char>(byte);
  }
  ~ShutdownSignals() {
    if (!installed_) return;
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
    g_signal_pipe = -1;
    close(fds_[0]);
    close(fds_[1]);
  }

 private:
  int fds_[2] = {-1, -1};
  bool installed_ = false;
  struct sigaction old_int_ = {};
  struct sigaction old_term_ = {};
};

}  // namespace

void AddServerFlags(CLI::App& app, ServerOptions& options) {
  app.add_option("--host", options.host, "address to listen on (0.0.0.0: every interface)")
      ->capture_default_str();
  app.add_option("--port", options.port, "port to listen on (0: any free port, logged)")
      ->capture_default_str();
  app.add_option("--parallel", options.scheduler.parallel,
                 "slots: requests generated at the same time, each with its own KV cache of -c "
                 "tokens")
      ->capture_default_str();
  app.add_option_function<int64_t>(
      "--batch-tokens",
      [&options](const int64_t& tokens) {
        if (tokens < 1 || tokens > kMaxBatchTokens) {
          throw CLI::ValidationError(
              "--batch-tokens",
              absl::StrCat("must be 1 to ", kMaxBatchTokens, " tokens, got ", tokens));
        }
        options.scheduler.batch_tokens = tokens;
      },
      "tokens per scheduler step, all slots together: one of each generating slot, then "
      "chunks of waiting prompts, so that a long prompt does not stall the others (llama.cpp's "
      "-b); at least --parallel [default: -b]");
  app.add_option("--queue", options.scheduler.queue_length,
                 "requests that may wait for a free slot (each holds an HTTP thread); more get "
                 "HTTP 503")
      ->capture_default_str();
  // An empty key would mean no authentication: refused, from the flag and from the environment
  // (CLI11 skips an empty environment variable, hence the check after parsing).
  CLI::Option* api_key =
      app.add_option_function<std::string>(
             "--api-key",
             [&options](const std::string& key) {
               if (key.empty()) {
                 throw CLI::ValidationError("--api-key", "must not be empty (omit it for no key)");
               }
               options.api_key = key;
             },
             "require 'Authorization: Bearer KEY'; better set $PINFER_API_KEY "
             "instead, which keeps the key out of ps and /proc/PID/cmdline")
          ->envname("PINFER_API_KEY");
  app.parse_complete_callback([api_key] {
    const char* env = std::getenv("PINFER_API_KEY");
    if (api_key->count() == 0 && env != nullptr && *env == '\0') {
      throw CLI::ValidationError("PINFER_API_KEY", "is set but empty (unset it for no key)");
    }
  });
  app.add_option_function<std::string>(
         "--max-body",
         [&options](const std::string& text) {
           absl::StatusOr<uint64_t> bytes = ParseByteSize(text);
           if (!bytes.ok())
             throw CLI::ValidationError("--max-body", std::string(bytes.status().message()));
           options.max_body_bytes = *bytes;
         },
         "largest request body (larger: HTTP 413)")
      ->default_str(FormatBytes(options.max_body_bytes));
  app.add_option("--max-tokens", options.max_tokens,
                 "most tokens a request may generate; also what a request without max_tokens "
                 "gets (less when the context is shorter)")
      ->capture_default_str();
  app.add_option("--max-connections", options.max_connections,
                 "connections open at once, each served on a thread of its own (more get HTTP "
                 "503); at least --parallel + --queue + 8")
      ->capture_default_str();
  app.add_option("--read-timeout", options.read_timeout_seconds,
                 "seconds a client may take to send a whole request, headers and body (slower: "
                 "HTTP 408)")
      ->capture_default_str();
  app.add_option("--timeout", options.timeout_seconds,
                 "seconds a request may take, waiting for a slot included: queued longer, it gets "
                 "503; generating longer, it is cut (finish_reason \"length\")")
      ->capture_default_str();
  app.add_option("--shutdown-grace", options.shutdown_grace_seconds,
                 "on SIGINT/SIGTERM, seconds running requests may still take before they are cut")
      ->capture_default_str();
  app.add_option("--chat-template", options.chat_template,
                 "chat format: llama2, chatml or llama3 (default: the one the model's chat "
                 "template writes; chatml when the model records none or another)");
  app.add_option("--alias", options.model_name,
                 "the model's name in the API (default: the model file's name without .pi)");
  app.add_flag("--strict-model", options.strict_model,
               "a request whose \"model\" is not this model's name gets HTTP 404 (default: any "
               "name is served by the one model, as llama-server does)");
  app.add_flag_callback(
      "--no-webui", [&options] { options.webui = false; }, "do not serve the chat page at /");
  app.add_flag_callback(
      "--quiet", [&options] { options.log_requests = false; }, "do not log each request");
}

absl::Status RunPiServer(const PiServerOptions& options) {
  if (absl::Status s = ValidateRuntimeFlags(options.runtime); !s.ok()) return s;
  if (absl::Status s = ValidateServerOptions(options.server); !s.ok()) return s;
  absl::StatusOr<LoadedRuntime> rt = LoadRuntime(options.runtime, kLog);
  if (!rt.ok()) return rt.status();
  absl::StatusOr<std::unique_ptr<PiServer>> server = PiServer::Create(
      *rt->executor, *rt->tokenizer, options.runtime.session_options(), options.server);
  if (!server.ok()) return server.status();
  LogRuntimeSummary(kLog, options.runtime, *rt, (*server)->context_length(),
                    (*server)->kv_cache_bytes());
  ShutdownSignals signals;
  if (absl::Status s = signals.Install(); !s.ok()) return s;
  if (absl::Status s = (*server)->Start(); !s.ok()) return s;
  const ServerOptions& o = options.server;
  // The KV memory in one line: what -c and --parallel cost together.
  std::fprintf(stderr, "%s%d slot%s of %lld tokens each, KV cache %s in all\n", kLog,
               o.scheduler.parallel, o.scheduler.parallel == 1 ? "" : "s",
               static_cast<long long>((*server)->context_length()),
               FormatBytes((*server)->kv_cache_bytes()).c_str());
  std::fprintf(
      stderr,
      "%s%lld tokens per step, queue %d, max %lld tokens per request, timeout %.0f s, at most %d "
      "connections, read timeout %g s; chat template %s%s%s\n",
      kLog, static_cast<long long>((*server)->stats().batch_tokens), o.scheduler.queue_length,
      static_cast<long long>(o.max_tokens), o.timeout_seconds, o.max_connections,
      o.read_timeout_seconds, (*server)->chat_template().Describe().c_str(),
      o.api_key.empty() ? "" : "; API key required", o.strict_model ? "; --strict-model" : "");
  std::fprintf(stderr, "%slistening on http://%s:%d (model \"%s\"); Ctrl-C stops\n", kLog,
               o.host.c_str(), (*server)->port(), (*server)->model_name().c_str());
  std::fflush(stderr);

  const int signal_number = signals.Wait();
  std::fprintf(stderr, "%s%s: shutting down (running requests may take %.0f s more)\n", kLog,
               signal_number == SIGINT ? "SIGINT" : "SIGTERM", o.shutdown_grace_seconds);
  (*server)->Shutdown(
      std::chrono::milliseconds(static_cast<int64_t>(o.shutdown_grace_seconds * 1000.0)));
  const SchedulerStats stats = (*server)->stats();
  std::fprintf(stderr, "%sstopped after %lld requests, %lld tokens generated\n", kLog,
               static_cast<long long>(stats.finished),
               static_cast<long long>(stats.generated_tokens));
  return absl::OkStatus();
}

}  // namespace pinfer
