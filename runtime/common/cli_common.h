// What every pinfer command-line program shares: one-line error reporting, a progress bar on
// stderr, byte-size parsing ("24G") and provenance strings.
#pragma once

#include <chrono>
#include <cstdint>
#include <iostream>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pinfer {

// Prints "<program>: error: <message>" on one line to stderr and returns the exit code 1.
int ReportError(std::string_view program, const absl::Status& status);

// `text` as one printable line: newlines and tabs become spaces, other control bytes \xNN.
std::string PrintableLine(std::string_view text);

// The CPU threads to use for a -t/--threads value: all hardware threads for -1 (or 0), else the
// value, capped at the hardware's thread count; `warning` then says so, for the caller to print.
int ThreadsToUse(int requested, std::string* warning);
// ThreadsToUse for a tool's -t value; its warning, if any, goes to stderr as "<program>: ...".
int ThreadsToUseWithWarning(std::string_view program, int requested);

// How a tool that makes a report ends: the report on stdout (its ToJson() with --json, else its
// ToText()) and exit status 0, or the error on one line (ReportError) and 1.
template <typename Report>
int PrintReport(std::string_view program, const absl::StatusOr<Report>& report, bool json) {
  if (!report.ok()) return ReportError(program, report.status());
  if (json) {
    std::cout << report->ToJson().dump(2) << "\n";
  } else {
    std::cout << report->ToText();
  }
  return 0;
}

// "24G", "512M", "1.5G", "4096" (bytes), "64K"; binary units (G = 2^30). Case-insensitive, an
// optional trailing "B" or "iB" is accepted.
absl::StatusOr<uint64_t> ParseByteSize(std::string_view text);
// 1536 -> "1.50 KiB"
std::string FormatBytes(uint64_t bytes);

// On SIGINT, SIGTERM or SIGHUP: removes the temporary files of unfinished atomic writes, then
// dies of the signal as it would have. Call at the start of every tool that writes artifacts.
void RemoveTemporaryFilesOnInterrupt();

// The command line as one string, for provenance metadata.
std::string JoinCommandLine(int argc, char** argv);

// A progress bar on stderr. On a terminal it redraws one line at most 10 times a second; otherwise
// it prints a line at every 10% so that logs stay readable. PINFER_PROGRESS_TTY=1 in the
// environment says stderr is passed on to a terminal by a parent program (draw as on one). Finish()
// prints the final state.
class ProgressBar {
 public:
  // `unit` names what is counted ("B" formats as bytes, anything else as a count: "tok").
  ProgressBar(std::string label, uint64_t total, std::string unit = "");
  ~ProgressBar();
  void Update(uint64_t done);
  void Add(uint64_t delta) { Update(done_ + delta); }
  void Finish();
  // Disables all output (tests, --quiet).
  static void SetEnabled(bool enabled);

 private:
  void Draw(bool final);
  std::string label_;
  uint64_t total_;
  std::string unit_;
  uint64_t done_ = 0;
  int last_decile_ = -1;
  bool finished_ = false;
  bool tty_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace pinfer
