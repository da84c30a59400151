// Which SIMD instruction sets the CPU kernels were compiled for, which one runs, and a switch to
// pin one (for tests that check every compiled path against the references on one machine, for
// benchmarks comparing paths, and for diagnosing a suspected miscompiled path).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace pinfer::cpu {

// Names of the targets compiled into the kernels that this CPU can run, best first
// (e.g. {"AVX3_DL", "AVX3", "AVX2", "SSE4", "SCALAR"}).
std::vector<std::string> SupportedSimdTargets();

// Makes every kernel dispatch to `name` (one of SupportedSimdTargets()); an empty name restores
// the automatic choice. Not thread-safe against kernels running concurrently.
absl::Status ForceSimdTarget(std::string_view name);

}  // namespace pinfer::cpu
