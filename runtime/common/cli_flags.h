// Validation of numeric command-line values, shared by every pinfer program: each numeric flag
// gets one of these CLI11 checks, so NaN, infinities, negatives, zero and absurd values are
// refused by name at parse time instead of being silently replaced or passed on (CLI::Range lets
// NaN through: every comparison with it is false). ReportParseError turns CLI11's errors into the
// one-line form of ReportError, keeping --help as CLI11 prints it.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "runtime/common/cli_common.h"
#include "runtime/common/version.h"

namespace pinfer {

// A finite real number in [low, high] (or (low, high] when `low_open`).
inline CLI::Validator FiniteIn(double low, double high, bool low_open = false) {
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        double v = 0;
        if (!absl::SimpleAtod(text, &v) || !std::isfinite(v)) {
          return absl::StrCat("expected a finite number, got '", text, "'");
        }
        if ((low_open ? v <= low : v < low) || v > high) {
          return absl::StrCat("must lie in ", low_open ? "(" : "[", low, ", ", high, "], got ",
                              text);
        }
        return std::string();
      },
      absl::StrCat("finite in ", low_open ? "(" : "[", low, ", ", high, "]"));
}

// An integer in [low, high]; `also` (e.g. -1 for "all" or "off") is accepted besides.
inline CLI::Validator IntegerIn(int64_t low, int64_t high,
                                std::optional<int64_t> also = std::nullopt) {
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        int64_t v = 0;
        if (!absl::SimpleAtoi(text, &v))
          return absl::StrCat("expected an integer, got '", text, "'");
        if (also && v == *also) return std::string();
        if (v < low || v > high) {
          return absl::StrCat("must lie in [", low, ", ", high, "]",
                              also ? absl::StrCat(" (or ", *also, ")") : std::string(), ", got ",
                              text);
        }
        return std::string();
      },
      absl::StrCat("integer in [", low, ", ", high, "]"));
}

// The -t/--threads check: 1 or more, or -1 for all (ThreadsToUse caps it at the hardware).
inline CLI::Validator ThreadCount() { return IntegerIn(1, 1 << 20, -1); }

// --version: prints VersionLine(program) on stdout and exits 0 (CLI11's CallForVersion, which
// ReportParseError and app.exit handle like --help).
inline void AddVersionFlag(CLI::App& app, std::string_view program) {
  app.set_version_flag(
      "--version", [name = std::string(program)] { return VersionLine(name); },
      "print the version, the commit, the CUDA and SIMD targets, and exit");
}

// --help, --help-all and --version as CLI11 prints them; every other parse error as one line,
// exit 1.
inline int ReportParseError(std::string_view program, CLI::App& app, const CLI::ParseError& e) {
  if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
  return ReportError(program, absl::InvalidArgumentError(e.what()));
}

}  // namespace pinfer
