// Running another pinfer program from a runtime program. runtime/ never links tools/ (DESIGN.md),
// so where a run needs a tool's work (pi-place solving a plan for --vram-budget, pi-convert turning
// a GGUF into a .pi for -m), it runs the tool's program as a subprocess: the one beside the running
// executable (the build's bin/ or the install's), else the one on PATH.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pinfer {

// The program `name` ("pi-place") beside /proc/self/exe, else on PATH. The error starts with
// `purpose` (the flag that needs it: "--vram-budget").
absl::StatusOr<std::string> FindSiblingTool(std::string_view name, std::string_view purpose);

struct SiblingRun {
  std::string purpose;  // starts the error message: "--vram-budget", "-m model.gguf"
  // The tool's stderr goes on to ours as it comes (a progress bar, its notes), all but its own
  // error line, which becomes the status message instead: a failure stays one line. When our
  // stderr is a terminal, the tool draws its progress bar as on one (PINFER_PROGRESS_TTY=1,
  // runtime/common/cli_common.h). Otherwise its stderr is only read for the error line.
  bool forward_stderr = false;
};

// Runs argv[0] (a path) with argv; its stdout goes to /dev/null. A non-zero exit or a signal is a
// FailedPrecondition "<purpose>: <program name> failed (exit N): <its last stderr line>", without
// its "<program name>: error: " prefix.
absl::Status RunSiblingTool(const std::vector<std::string>& argv, const SiblingRun& run);

}  // namespace pinfer
