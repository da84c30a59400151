#include "tools/solve_placement/solve_placement.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "runtime/common/cli_common.h"
#include "tools/solve_placement/greedy_placement.h"

namespace pinfer {
namespace {

GroupPlacement Everything(const PlacementProblem& problem, const std::vector<LayerGroups>& groups) {
  GroupPlacement p;
  for (const LayerGroups& g : groups) p.ffn_groups.push_back(g.groups());
  p.attention_on_gpu.assign(problem.layers.size(), 1);
  p.output_on_gpu = true;
  return p;
}

}  // namespace

absl::Status CheckBudget(const PlacementProblem& problem) {
  if (problem.budget_bytes >= problem.MinimumBytes()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "the VRAM budget of ", FormatBytes(problem.budget_bytes),
      " is below the minimum working set of ", FormatBytes(problem.MinimumBytes()), " (",
      problem.MinimumBytes(), " bytes: workspace ", FormatBytes(problem.workspace_bytes),
      " + norms ", FormatBytes(problem.norm_bytes), ")"));
}

absl::StatusOr<PlacementResult> SolvePlacement(const PlacementProblem& problem,
                                               const SolveOptions& options) {
  if (absl::Status s = problem.Validate(); !s.ok()) return s;
  if (absl::Status s = CheckBudget(problem); !s.ok()) return s;
  PlacementResult result;
  result.groups = BuildGroups(problem);

  const auto t0 = std::chrono::steady_clock::now();
  GroupPlacement greedy;
  const bool everything = problem.budget_bytes >= problem.EverythingBytes();
  greedy =
      everything ? Everything(problem, result.groups) : GreedyPlacement(problem, result.groups);
  result.greedy_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  result.greedy = ToNeurons(result.groups, greedy);
  if (absl::Status s = CheckFeasible(problem, result.groups, result.greedy); !s.ok()) {
    return absl::InternalError(absl::StrCat("greedy baseline: ", s.message()));
  }
  result.greedy_figures = Evaluate(problem, result.greedy);

  GroupPlacement chosen = greedy;
  if (everything) {
    result.solver = "all fits";
  } else if (options.greedy_only) {
    result.solver = "greedy";
  } else {
    absl::StatusOr<MipResult> mip = SolvePlacementMip(problem, result.groups, greedy, options.mip);
    if (!mip.ok()) return mip.status();
    result.mip = *std::move(mip);
    chosen = result.mip.placement;
    if (problem.objective == Objective::kCoverage) {
      FillLeftoverWithDense(problem, result.groups, chosen);
    }
    result.solver = absl::StrCat("cbc ", result.mip.status);
  }
  result.placement = ToNeurons(result.groups, chosen);
  if (absl::Status s = CheckFeasible(problem, result.groups, result.placement); !s.ok()) {
    return absl::InternalError(absl::StrCat(result.solver, " solution: ", s.message()));
  }
  result.figures = Evaluate(problem, result.placement);
  return result;
}

}  // namespace pinfer
