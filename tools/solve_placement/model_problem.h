// From model.pi + profile (+ predictor) to a PlacementProblem, and from a solved placement to the
// plan artifact. Bytes come from model.pi's tensor index (exact per tensor and dtype), hparams
// from ModelConfig, firing frequencies from the profile; the rest is memory_accounting.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "format/pi_file.h"
#include "runtime/model/activation_profile.h"
#include "runtime/model/model_config.h"
#include "runtime/model/placement_plan.h"
#include "tools/solve_placement/placement_problem.h"
#include "tools/solve_placement/solve_placement.h"

namespace pinfer {

struct ModelPlacementOptions {
  uint64_t budget_bytes = 0;
  int64_t context = 0;  // 0: min(4096, the model's training context)
  int64_t group_size = 64;
  int64_t batch = 512;                      // tokens per forward pass the workspace is sized for
  std::optional<uint64_t> workspace_bytes;  // overrides memory_accounting.h's estimate
  Objective objective = Objective::kCoverage;
  HardwareModel hardware;
  std::string predictor_path;  // empty: no predictor file, estimate its size
  int64_t predictor_rank = 0;  // for the estimate; 0: DefaultPredictorRank
};

struct ModelProblem {
  PlacementProblem problem;
  ModelConfig config;
  std::string model_digest;
  std::string weight_dtype;  // dtype of the FFN matrices, for reports
  int64_t context = 0;
  int64_t batch = 0;
  int64_t profile_tokens = 0;
  std::string predictor_source;  // where the predictor bytes come from
  // Tensor names by placement unit; `tensor_order` is the model's own order.
  std::vector<std::string> tensor_order;
  std::vector<std::string> norm_tensors;
  std::vector<std::vector<std::string>> attention_tensors;  // per layer
  std::string output_tensor;
};

// Errors name the file: a profile for another model or of another shape, a predictor for another
// model, missing tensors, FFN matrices whose rows are not n_ff.
absl::StatusOr<ModelProblem> BuildModelProblem(const PiFile& model,
                                               const ActivationProfile& profile,
                                               const ModelPlacementOptions& options);

PlacementPlan MakePlan(const ModelProblem& model, const PlacementResult& result);

}  // namespace pinfer
