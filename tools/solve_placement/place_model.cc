#include "tools/solve_placement/place_model.h"

#include <cstdio>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "format/output_check.h"
#include "format/pi_file.h"
#include "runtime/model/activation_profile.h"

namespace pinfer {
namespace {

// model.pi -> model.<suffix>.pi (beside the model).
std::string Beside(const std::string& model, const std::string& suffix) {
  std::string base = model;
  if (base.size() > 3 && base.ends_with(".pi")) base.resize(base.size() - 3);
  return absl::StrCat(base, ".", suffix, ".pi");
}

absl::Status Prefixed(const std::string& path, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(path, ": ", status.message()));
}

}  // namespace

absl::StatusOr<PlacedModel> PlaceModel(const PlaceModelOptions& options) {
  absl::StatusOr<std::unique_ptr<PiFile>> model =
      PiFile::Open(options.model_path, {.expected_kind = ArtifactKind::kModel});
  if (!model.ok()) return model.status();
  const std::string digest = (*model)->ContentDigestHex();
  PlacedModel placed;
  placed.profile_path =
      options.profile_path.empty() ? Beside(options.model_path, "profile") : options.profile_path;
  absl::StatusOr<ActivationProfile> profile = ActivationProfile::Read(placed.profile_path, digest);
  if (!profile.ok()) return profile.status();
  placed.predictor_path = options.predictor_path;
  if (placed.predictor_path.empty() &&
      std::filesystem::exists(Beside(options.model_path, "predictor"))) {
    placed.predictor_path = Beside(options.model_path, "predictor");
  }
  ModelPlacementOptions placement = options.placement;
  placement.predictor_path = placed.predictor_path;
  placed.output_path =
      options.output_path.empty() ? Beside(options.model_path, "plan") : options.output_path;
  {
    const OutputFile outputs[] = {{"-o", placed.output_path, ArtifactKind::kPlan}};
    const InputFile inputs[] = {{"the model", options.model_path},
                                {"the profile", placed.profile_path},
                                {"the predictor", placed.predictor_path},
                                {"the hardware file", options.hardware_file}};
    if (absl::Status s = CheckOutputs(outputs, inputs); !s.ok()) return s;
  }

  absl::StatusOr<ModelProblem> problem = BuildModelProblem(**model, *profile, placement);
  if (!problem.ok()) return problem.status();
  // A longer context than the model was trained for is allowed (the KV cache is sized for it),
  // but the model is unlikely to be useful there.
  if (problem->config.context_length > 0 && placement.context > problem->config.context_length) {
    std::fprintf(stderr,
                 "%s: warning: --ctx %lld is above the context %s was trained for (%lld tokens, "
                 "from its header)\n",
                 options.program.c_str(), static_cast<long long>(placement.context),
                 options.model_path.c_str(),
                 static_cast<long long>(problem->config.context_length));
  }
  if (absl::Status s = CheckBudget(problem->problem); !s.ok()) {
    return Prefixed(options.model_path, s);
  }
  if (options.progress) {
    std::fprintf(stderr, "%s: solving %zu layers x %lld neurons in groups of %lld (limit %.0f s)\n",
                 options.program.c_str(), problem->problem.layers.size(),
                 static_cast<long long>(problem->config.n_ff),
                 static_cast<long long>(placement.group_size), options.solve.mip.time_limit_s);
  }
  absl::StatusOr<PlacementResult> result = SolvePlacement(problem->problem, options.solve);
  if (!result.ok()) return Prefixed(options.model_path, result.status());
  placed.plan = MakePlan(*problem, *result);
  if (absl::Status s = placed.plan.Write(placed.output_path, options.provenance); !s.ok()) return s;
  placed.problem = *std::move(problem);
  placed.result = *std::move(result);
  return placed;
}

}  // namespace pinfer
