#include "runtime/common/cli_common.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "format/atomic_file.h"
#include "format/strings.h"

namespace pinfer {
namespace {

std::atomic<bool> g_progress_enabled{true};

std::string FormatAmount(double value, std::string_view unit) {
  if (unit == "B") return FormatBytes(static_cast<uint64_t>(value));
  if (value >= 1e9) return absl::StrFormat("%.2fG %s", value / 1e9, unit);
  if (value >= 1e6) return absl::StrFormat("%.2fM %s", value / 1e6, unit);
  if (value >= 1e4) return absl::StrFormat("%.1fk %s", value / 1e3, unit);
  // Slow rates (a 7B model on a small CPU) would print as "0 tok/s".
  if (value < 10 && value != std::floor(value)) return absl::StrFormat("%.2f %s", value, unit);
  return absl::StrFormat("%.0f %s", value, unit);
}

}  // namespace

namespace {

void CleanUpAndDie(int signal_number) {
  RemovePendingTemporaryFiles();
  std::signal(signal_number, SIG_DFL);
  std::raise(signal_number);
}

}  // namespace

void RemoveTemporaryFilesOnInterrupt() {
  for (int signal_number : {SIGINT, SIGTERM, SIGHUP}) std::signal(signal_number, CleanUpAndDie);
}

int ReportError(std::string_view program, const absl::Status& status) {
  std::fprintf(stderr, "%.*s: error: %s\n", static_cast<int>(program.size()), program.data(),
               PrintableLine(StdSv(status.message())).c_str());
  return 1;
}

std::string PrintableLine(std::string_view text) {
  // One line: newlines inside a message would break log parsers and the "one clear line" rule.
  // Other control bytes come from files (a name, a metadata string) and could drive the terminal:
  // they are shown as \xNN. Bytes >= 0x80 stay, so that UTF-8 reads as text.
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '\n' || c == '\r' || c == '\t') {
      out.push_back(' ');
    } else if (u < 0x20 || u == 0x7f) {
      absl::StrAppend(&out, "\\x", absl::Hex(u, absl::kZeroPad2));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

int ThreadsToUse(int requested, std::string* warning) {
  const int hardware = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  if (requested <= 0) return hardware;
  if (requested > hardware) {
    // More threads than the hardware runs at once only adds contention: at -t 1000 decode ran
    // 260x slower. The user asked for it, so say what happens instead.
    if (warning != nullptr) {
      *warning = absl::StrCat("warning: -t ", requested, " exceeds the ", hardware,
                              " hardware threads; using ", hardware);
    }
    return hardware;
  }
  return requested;
}

int ThreadsToUseWithWarning(std::string_view program, int requested) {
  std::string warning;
  const int threads = ThreadsToUse(requested, &warning);
  if (!warning.empty()) {
    std::fprintf(stderr, "%.*s: %s\n", static_cast<int>(program.size()), program.data(),
                 warning.c_str());
  }
  return threads;
}

absl::StatusOr<uint64_t> ParseByteSize(std::string_view text) {
  std::string s = absl::AsciiStrToUpper(std::string(text));
  const std::string original(text);
  if (s.ends_with("IB")) {
    s.resize(s.size() - 2);
  } else if (s.ends_with("B")) {
    s.resize(s.size() - 1);
  }
  double multiplier = 1;
  if (!s.empty()) {
    switch (s.back()) {
      case 'K':
        multiplier = 1024.0;
        break;
      case 'M':
        multiplier = 1024.0 * 1024;
        break;
      case 'G':
        multiplier = 1024.0 * 1024 * 1024;
        break;
      case 'T':
        multiplier = 1024.0 * 1024 * 1024 * 1024;
        break;
      default:
        break;
    }
    if (multiplier != 1) s.pop_back();
  }
  double value;
  if (s.empty() || !absl::SimpleAtod(s, &value) || !std::isfinite(value) || value < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", original, "' is not a size (examples: 24G, 512M, 1.5G, 4096)"));
  }
  const double bytes = value * multiplier;
  if (bytes >= 1.8e19)
    return absl::InvalidArgumentError(absl::StrCat("'", original, "' is too large"));
  return static_cast<uint64_t>(std::llround(bytes));
}

std::string FormatBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 4) {
    value /= 1024.0;
    ++unit;
  }
  if (unit == 0) return absl::StrCat(bytes, " B");
  return absl::StrFormat("%.2f %s", value, units[unit]);
}

std::string JoinCommandLine(int argc, char** argv) {
  std::string out;
  for (int i = 0; i < argc; ++i) {
    if (i > 0) out += ' ';
    std::string_view arg = argv[i];
    if (arg.find_first_of(" \t\"'") != std::string_view::npos) {
      out += '\'';
      out += arg;
      out += '\'';
    } else {
      out += arg;
    }
  }
  return out;
}

namespace {
bool ProgressTtyHinted() {
  const char* hint = std::getenv("PINFER_PROGRESS_TTY");
  return hint != nullptr && std::string_view(hint) == "1";
}
}  // namespace

void ProgressBar::SetEnabled(bool enabled) { g_progress_enabled = enabled; }

ProgressBar::ProgressBar(std::string label, uint64_t total, std::string unit)
    : label_(std::move(label)),
      total_(total),
      unit_(std::move(unit)),
      // PINFER_PROGRESS_TTY=1: stderr is a pipe to a program that passes it on to a terminal
      // (runtime/app/sibling_tool.h: pi-run converting a GGUF with pi-convert).
      tty_(isatty(STDERR_FILENO) != 0 || ProgressTtyHinted()),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_ - std::chrono::seconds(1)) {}

ProgressBar::~ProgressBar() {
  if (!finished_ && done_ > 0) Finish();
}

void ProgressBar::Update(uint64_t done) {
  done_ = done;
  if (!g_progress_enabled) return;
  const auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    Draw(false);
  } else if (total_ > 0 && now - start_ >= std::chrono::seconds(1)) {
    // Logs get a line per 10%, and nothing at all for work that finishes within a second.
    const int decile = static_cast<int>(10 * std::min(done_, total_) / total_);
    if (decile != last_decile_ && decile < 10) {
      last_decile_ = decile;
      Draw(false);
    }
  }
}

void ProgressBar::Finish() {
  if (finished_) return;
  finished_ = true;
  const bool quick = std::chrono::steady_clock::now() - start_ < std::chrono::seconds(1);
  if (g_progress_enabled && (tty_ || !quick || last_decile_ >= 0)) Draw(true);
}

void ProgressBar::Draw(bool final) {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double fraction = total_ > 0 ? std::min(1.0, static_cast<double>(done_) / total_) : 1.0;
  const double rate = seconds > 0 ? done_ / seconds : 0.0;
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(fraction * kWidth);
  std::string bar = std::string(filled, '#') + std::string(kWidth - filled, '.');
  std::string line = absl::StrFormat("%s [%s] %5.1f%% %s", label_, bar, fraction * 100,
                                     FormatAmount(done_, unit_));
  if (total_ > 0) absl::StrAppend(&line, " / ", FormatAmount(total_, unit_));
  if (seconds > 0.05) absl::StrAppend(&line, "  ", FormatAmount(rate, unit_), "/s");
  if (!final && rate > 0 && total_ > done_) {
    absl::StrAppend(&line, absl::StrFormat("  eta %.0fs", (total_ - done_) / rate));
  }
  if (final) absl::StrAppend(&line, absl::StrFormat("  %.2fs", seconds));
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

}  // namespace pinfer
