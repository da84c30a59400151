// The --version line of every pinfer program: the project version, the commit it was built from,
// the CUDA targets of the GPU backend and the SIMD targets of the CPU kernels, e.g.
//   pi-run 0.1.0 (commit 2f4c9dd), CUDA: sm_90, compute_80, SIMD: AVX3_DL, AVX3, AVX2, SSE4,
//   SCALAR (selected: AVX3_DL)
// on one line ("CUDA: none" without the backend, "-dirty" after the commit for a tree with
// changes). cli_flags.h's AddVersionFlag adds the flag.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pinfer {

std::string VersionLine(std::string_view program);

// The commit HEAD was at when this program was built (short hash, "-dirty" when tracked files had
// changes), or "unknown" for a build outside a git checkout.
std::string_view BuildCommit();

// CMake's CUDA architectures ("90-real,80-virtual", ',' or ';' separated) as the code they hold:
// "sm_90, compute_80" ("90" holds both; "all", "native"... are kept as they are); "none" for an
// empty list (no CUDA backend).
std::string DescribeCudaArchitectures(std::string_view architectures);

// The SIMD targets the CPU kernels were compiled for, best first, and the one this CPU runs.
std::vector<std::string> CompiledSimdTargets();
std::string SelectedSimdTarget();

}  // namespace pinfer
