// held-pi-server: pi-server whose generations a test holds at a chosen token, for the tests of
// what the program does on SIGTERM while a request runs (pi_server_cli_test.cc). Built for the
// tests only and never installed: it is pi-server's flags and RunPiServer (its signal handling and
// graceful shutdown included) with SchedulerOptions::hold set, so that whether a request is still
// running when the signal comes does not depend on how fast the machine generates.
//
//   held-pi-server AT <pi-server flags>
//
// A generation of more than AT tokens is held once it has generated AT of them, until the process
// gets SIGUSR1; from then on nothing is held. The first hold is logged (stderr) as
// "held-pi-server: holding a generation at AT tokens".
#include <signal.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "runtime/app/runtime_flags.h"
#include "runtime/app/server/pi_server.h"
#include "runtime/common/cli_common.h"

namespace pinfer {
namespace {

constexpr char kProgram[] = "held-pi-server";

std::atomic<bool> g_released{false};
static_assert(std::atomic<bool>::is_always_lock_free);  // set in a signal handler

extern "C" void OnRelease(int) { g_released = true; }

int Main(int argc, char** argv) {
  int64_t at = 0;
  if (argc < 2 || !absl::SimpleAtoi(argv[1], &at) || at < 0) {
    std::fprintf(stderr, "usage: %s AT <pi-server flags>  (AT: tokens, 0 or more)\n", kProgram);
    return 1;
  }
  struct sigaction action = {};
  action.sa_handler = OnRelease;
  sigemptyset(&action.sa_mask);
  sigaction(SIGUSR1, &action, nullptr);

  // pi-server's flags, parsed as pi-server parses them (its main adds only the help text).
  CLI::App app{"pi-server with its generations held at a token (tests only)", kProgram};
  PiServerOptions options;
  AddRuntimeFlags(app, options.runtime);
  AddServerFlags(app, options.server);
  try {
    app.parse(argc - 1, argv + 1);  // argv[1] (AT) stands for the program name
  } catch (const CLI::ParseError& e) {
    return ReportError(kProgram, absl::InvalidArgumentError(e.what()));
  }
  auto announced = std::make_shared<std::atomic<bool>>(false);
  options.server.scheduler.hold = [at, announced](const Generation& generation, int64_t generated) {
    if (g_released || generation.request().max_tokens <= at || generated < at) return false;
    if (!announced->exchange(true)) {
      std::fprintf(stderr, "%s: holding a generation at %lld tokens\n", kProgram,
                   static_cast<long long>(at));
      std::fflush(stderr);
    }
    return true;
  };
  if (absl::Status s = RunPiServer(options); !s.ok()) return ReportError(kProgram, s);
  return 0;
}

}  // namespace
}  // namespace pinfer

int main(int argc, char** argv) { return pinfer::Main(argc, argv); }
