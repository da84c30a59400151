// The placement as a mixed-integer program, solved with COIN-OR CBC (CbcModel over
// OsiClpSolverInterface). The only file that sees CBC.
//
// Formulation. A layer's choices are options (a, k): attention + KV cache on the GPU or not
// (latency objective only), and k GPU groups, k = 0 or min_share <= k <= K - the per-layer
// minimum share is thus built into the option set. Each option's GPU bytes and cost (ms per token
// from cost_model.h, or minus its % of all activations) are computed exactly. Then:
//   x_lj in [0,1]   weight of option j of layer l, sum_j x_lj = 1 (continuous)
//   n_l  integer    = sum_j k_j x_lj           the number of GPU groups: a per-layer count, not a
//                                              binary per group (PowerInfer: an integer per group)
//   z_l  binary     = sum_{j: k_j > 0} x_lj    the layer has GPU neurons (the indicator of the
//                                              minimum share and of the predictor's bytes)
//   w_l  binary     = sum_{j: k_j = K} x_lj    all of its groups
//   a_l  binary     = sum_{j: a_j} x_lj        its attention (latency only)
//   o    binary                                the classifier on the GPU (latency only)
//   sum_lj bytes_j x_lj + output * o <= budget - workspace - norms
//   minimize sum_lj cost_j x_lj (+ o's cost)
// Why it is exact and small: for fixed (a, z = 1, w = 0) an option's cost is convex in k (the CPU
// part follows the concave coverage curve, the GPU part is linear, their max is convex) and its
// bytes are linear, so once n, z, w, a are integers the cheapest weights sit on the single option
// k = n. z and w cut out the two non-convex points (k = 0: no predictor, no synchronisation;
// k = K: no CPU part, and a short last group). The relaxation is the multiple-choice knapsack's
// LP, whose optimum has at most one layer split between two options: the bound is within one
// option of the optimum. That LP solution, rounded (down, or up and then shrunk where it costs
// least) and improved greedily, is CBC's first incumbent along with the greedy placement; CBC
// then branches on the few fractional n, z, w, a. The coverage objective leaves attention and the
// classifier to the leftover budget afterwards (greedy_placement.h).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/solve_placement/placement_problem.h"

namespace pinfer {

struct MipOptions {
  double time_limit_s = 10;
  // Stop when (incumbent - bound) / |incumbent| is below this: the cost model's own error is far
  // larger than 0.5%.
  double relative_gap = 5e-3;
  int log_level = 0;  // CBC's own log on stdout (0: silent)
};

struct MipResult {
  GroupPlacement placement;
  std::string status;      // "optimal", "time limit", "gap limit"
  double objective = 0;    // in the objective's unit: % coverage or ms per token
  double bound = 0;        // best bound CBC proved, same unit
  double gap = 0;          // relative
  double seconds = 0;      // wall time, building the model included
  double cpu_seconds = 0;  // process CPU time of the same span (the machine may be shared)
  int64_t nodes = 0;
  int64_t columns = 0, rows = 0, integers = 0;
  double time_limit_s = 0;  // the limits CBC was given (MipOptions), for the report
  double relative_gap = 0;
};

absl::StatusOr<MipResult> SolvePlacementMip(const PlacementProblem& problem,
                                            const std::vector<LayerGroups>& groups,
                                            const GroupPlacement& start, const MipOptions& options);

}  // namespace pinfer
