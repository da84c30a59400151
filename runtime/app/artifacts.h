// The load step's first half: every artifact that changes how the model executes, resolved from
// the flags and the files beside the model, each read and validated once (the readers check it
// against the model: digest, shape).
//   thresholds   a silu/gelu model's calibrated τ per layer (--profile, else model.profile.pi):
//                required for sparse execution, applied when a plan runs
//   predictor    --predictor, else model.predictor.pi when it exists (never with --dense or
//                --oracle-sparse); its firing rule must be the model's
//   auto         without --dense, --oracle-sparse, --sparse-mode exact|predictor or a plan:
//                whenever exact selection works (a ReLU-family model, or thresholds found) or a
//                predictor exists; else dense, as before
//   plan         --plan, --vram-budget (solved by pi-place when missing), else model.plan.pi when
//                it exists and a GPU is present; --plan none turns it off
// Errors name the flag or the file and the reason, on one line.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/app/placement_setup.h"
#include "runtime/app/sparse_setup.h"
#include "runtime/model/firing_thresholds.h"
#include "runtime/model/model.h"
#include "runtime/model/placement_plan.h"
#include "runtime/model/predictor_weights.h"

namespace pinfer {

struct RuntimeArtifacts {
  std::shared_ptr<const FiringThresholds> firing;     // null: none apply
  std::shared_ptr<const PredictorWeights> predictor;  // null: none
  std::string predictor_path;
  std::optional<PlacementPlan> plan;
  std::string plan_path;
  bool oracle = false;             // --oracle-sparse: the true activations select
  bool exact = false;              // --sparse-mode exact: gate-first selection
  // --sparse-mode auto (the default where possible, without a plan): dense, exact or the
  // predictor (when there is one) per layer by measured cost.
  bool auto_select = false;
  std::vector<std::string> notes;  // lines for the program's log (no prefix, no newline)

  // Whether some part selects its neurons (a predictor, the oracle, or gate-first).
  bool selects() const { return predictor != nullptr || oracle || exact || auto_select; }
};

absl::StatusOr<RuntimeArtifacts> ResolveArtifacts(const SparseFlags& sparse,
                                                  const PlacementFlags& placement,
                                                  const std::string& model_path,
                                                  const Model& model);

}  // namespace pinfer
