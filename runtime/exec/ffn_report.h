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
//   "hybrid FFN over N tokens: GPU part (<device>) …"  some layer has an asynchronous part
//   "check: layer  L: …", "check: all layers: …"       --check
std::vector<std::string> FfnReportLines(const Executor& executor);

// How the FFN executes, the first word of the report: "dense" (no part selects, none is
// asynchronous), "hybrid" (some layer has an asynchronous, GPU part) or "sparse" (otherwise).
const char* FfnMode(const Executor& executor);

// Forgets every layer's statistics (a new measurement starts).
void ResetFfnStats(Executor& executor);

}  // namespace pinfer
