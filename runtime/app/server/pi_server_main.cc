// pi-server: an OpenAI-compatible HTTP API over a .pi model.
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "runtime/app/runtime_flags.h"
#include "runtime/app/server/pi_server.h"
#include "runtime/common/cli_common.h"
#include "runtime/common/cli_flags.h"

namespace pinfer {
namespace {

constexpr char kProgram[] = "pi-server";

int Main(int argc, char** argv) {
  CLI::App app{
      "Serve a .pi model over OpenAI's HTTP API: POST /v1/completions and /v1/chat/completions\n"
      "(JSON, or server-sent events with \"stream\": true), GET /v1/models and /health;\n"
      "llama-server's POST /tokenize, /detokenize and GET /props; GET /metrics (Prometheus).\n"
      "Takes the same model flags as pi-run. Stops gracefully on SIGINT/SIGTERM.\n\n"
      "Examples:\n"
      "  pi-server -m stories260K.pi --port 8080 --parallel 4\n"
      "  curl http://127.0.0.1:8080/v1/completions -H 'Content-Type: application/json' \\\n"
      "    -d '{\"prompt\": \"Once upon a time\", \"max_tokens\": 32, \"temperature\": 0}'\n"
      "  PINFER_API_KEY=secret pi-server -m model.pi --host 0.0.0.0 --chat-template llama2",
      kProgram};
  PiServerOptions options;
  AddRuntimeFlags(app, options.runtime);
  AddServerFlags(app, options.server);
  AddVersionFlag(app, kProgram);
  // -ngl, llama.cpp's multi-letter single-dash flag, as its long form.
  std::vector<std::string> args(argv, argv + argc);
  for (size_t i = 1; i < args.size() && args[i] != "--"; ++i) args[i] = SpellLlamaCppFlag(args[i]);
  std::vector<char*> arg_pointers;
  for (std::string& arg : args) arg_pointers.push_back(arg.data());
  try {
    app.parse(static_cast<int>(arg_pointers.size()), arg_pointers.data());
  } catch (const CLI::ParseError& e) {
    return ReportParseError(kProgram, app, e);
  }
  if (absl::Status s = RunPiServer(options); !s.ok()) return ReportError(kProgram, s);
  return 0;
}

}  // namespace
}  // namespace pinfer

int main(int argc, char** argv) { return pinfer::Main(argc, argv); }
