// The one report of what the executor's FFN did, for a program's stderr: the mode (dense, sparse,
// hybrid), the selection and the cost model, bytes per token, the dense fallbacks, the GPU/CPU
// split and, with --check, each layer's recall against the true activations.
#pragma once

#include <string>
#include <vector>

#include "runtime/exec/executor.h"

namespace pinfer {

// Lines without a program prefix or newline:
//   "ffn: dense"                                        every layer one CPU part computing all
//   "ffn: sparse (<selector> selection; cost model …)…" some part selects
//   "ffn: layer  L: decode exact, prompts dense; …"      some part selects: per layer, how its
//                                                        calls selected, bytes, GB/s
//   "hybrid FFN over N tokens: GPU part (<device>) …"  some layer has an asynchronous part
//   "check: layer  L: …", "check: all layers: …"       --check
std::vector<std::string> FfnReportLines(const Executor& executor);

// Per layer, what its calls did (also pi-run's --json).
struct FfnLayerReport {
  int64_t layer = 0;
  // Calls by selection, [0] decode (one token) and [1] prompt batches, then dense, exact,
  // predictor (FfnStats::mode_calls).
  int64_t mode_calls[2][3] = {};
  double bytes_per_token = 0.0;            // FFN weights and the predictor's
  double predictor_bytes_per_token = 0.0;  // the predictor's alone
  double seconds_per_token = 0.0;          // the parts' time and the selector's
  double gbps = 0.0;                       // bytes read / that time

  // "exact" when all of the kind's calls were exact, "exact 12, dense 4" when mixed, "-" none.
  std::string Modes(int kind) const;
};
std::vector<FfnLayerReport> FfnLayerReports(const Executor& executor);

// How the FFN executes, the first word of the report: "dense" (no part selects, none is
// asynchronous), "hybrid" (some layer has an asynchronous, GPU part) or "sparse" (otherwise).
const char* FfnMode(const Executor& executor);

// Forgets every layer's statistics (a new measurement starts).
void ResetFfnStats(Executor& executor);

}  // namespace pinfer
