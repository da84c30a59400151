// What pi-server does once its flags are parsed: load the model (the same flags and loader as
// pi-run), start the HTTP server, log where it listens, and serve until SIGINT or SIGTERM; then
// shut down gracefully (see PiServer::Shutdown) and return OK.
#pragma once

#include "absl/status/status.h"
#include "runtime/app/runtime_flags.h"
#include "runtime/app/server/http_server.h"

namespace CLI {
class App;
}  // namespace CLI

namespace pinfer {

struct PiServerOptions {
  RuntimeFlags runtime;
  ServerOptions server;
};

// Registers the server's own flags (--host, --port, --parallel, --api-key, limits, ...). The
// runtime flags are registered by AddRuntimeFlags.
void AddServerFlags(CLI::App& app, ServerOptions& options);

absl::Status RunPiServer(const PiServerOptions& options);

}  // namespace pinfer
