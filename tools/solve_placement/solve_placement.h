// The placement library's entry point: a pure function from a PlacementProblem to a checked
// placement, its figures, and the same figures for the greedy baseline. pi-place calls it on a
// problem built from model.pi; the hybrid runtime's --vram-budget can call it the same way.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/solve_placement/cost_model.h"
#include "tools/solve_placement/mip_placement.h"
#include "tools/solve_placement/placement_problem.h"

namespace pinfer {

struct SolveOptions {
  MipOptions mip;
  bool greedy_only = false;  // skip CBC: the baseline alone
};

struct PlacementResult {
  std::vector<LayerGroups> groups;  // with each layer's minimum share
  NeuronPlacement placement;        // the chosen placement, feasibility-checked
  PlacementFigures figures;
  // How it was solved: "all fits" (budget above everything, no solve), "cbc optimal",
  // "cbc gap limit", "cbc time limit", "greedy".
  std::string solver;
  MipResult mip;  // zero when CBC did not run
  NeuronPlacement greedy;
  PlacementFigures greedy_figures;
  double greedy_seconds = 0;
};

// OK when the budget holds the minimum working set; otherwise InvalidArgument naming the minimum
// and its parts. (SolvePlacement checks it too.)
absl::Status CheckBudget(const PlacementProblem& problem);

// Errors: an invalid problem; a budget below the minimum working set (InvalidArgument naming the
// minimum and its parts); a solution that fails the independent check (Internal; never returned
// as a result).
absl::StatusOr<PlacementResult> SolvePlacement(const PlacementProblem& problem,
                                               const SolveOptions& options);

}  // namespace pinfer
