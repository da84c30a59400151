// pi-place's report: a human-readable table (solver against the greedy baseline, GPU bytes by
// part, one row per layer) and the same content as JSON (--json).
#pragma once

#include <string>

#include "tools/solve_placement/model_problem.h"
#include "tools/solve_placement/solve_placement.h"

namespace pinfer {

std::string FormatPlacementReport(const ModelProblem& model, const PlacementResult& result);
// Pretty-printed JSON object; `plan_path` is where the plan was written (empty: not written).
std::string PlacementReportJson(const ModelProblem& model, const PlacementResult& result,
                                const std::string& plan_path);

}  // namespace pinfer
