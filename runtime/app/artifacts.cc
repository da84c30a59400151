#include "runtime/app/artifacts.h"

#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/model/activation_profile.h"

namespace pinfer {
namespace {

bool Exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

// A calibrated model's thresholds; `required`: an error when there are none.
absl::StatusOr<std::shared_ptr<const FiringThresholds>> LoadThresholds(
    const SparseFlags& flags, const std::string& model_path, const Model& model, bool required) {
  auto firing = std::make_shared<FiringThresholds>();
  firing->activation = model.config().ffn_act;
  if (firing->activation.HasExactZeros()) return firing;
  const bool explicit_path = !flags.profile_path.empty();
  const std::string path = explicit_path ? flags.profile_path : DefaultProfilePath(model_path);
  if (!explicit_path && !Exists(path)) {
    if (!required) return nullptr;
    return absl::FailedPreconditionError(absl::StrCat(
        model_path, ": sparse execution of a ", firing->activation.ToString(),
        " model needs calibrated thresholds: run pi-profile --target-sparsity S (expected ", path,
        ", or pass --profile FILE)"));
  }
  absl::StatusOr<ActivationProfile> profile = ActivationProfile::ReadFor(path, model);
  if (!profile.ok()) return profile.status();
  if (!profile->calibrated()) {
    return absl::FailedPreconditionError(
        absl::StrCat(path,
                     ": the profile has no calibrated thresholds (made without "
                     "--target-sparsity), which a ",
                     firing->activation.ToString(), " model needs for sparse execution"));
  }
  firing->per_layer = profile->threshold;
  return firing;
}

}  // namespace

absl::StatusOr<RuntimeArtifacts> ResolveArtifacts(const SparseFlags& sparse,
                                                  const PlacementFlags& placement,
                                                  const std::string& model_path,
                                                  const Model& model) {
  RuntimeArtifacts a;
  if (sparse.dense) return a;
  a.oracle = sparse.oracle;
  a.exact = sparse.mode == "exact";

  absl::StatusOr<std::optional<std::string>> plan_path = ResolvePlanPath(placement, model, a.notes);
  if (!plan_path.ok()) return plan_path.status();
  if (plan_path->has_value()) {
    a.plan_path = **plan_path;
    const char* flag = !placement.vram_budget.empty() ? "--vram-budget" : "--plan";
    absl::StatusOr<PlacementPlan> plan = PlacementPlan::ReadFor(a.plan_path, model);
    if (!plan.ok()) {
      return absl::Status(plan.status().code(), absl::StrCat(flag, ": ", plan.status().message()));
    }
    a.plan = *std::move(plan);
  }

  std::string predictor = sparse.predictor_path;
  if (predictor.empty() && !sparse.oracle && !a.exact && Exists(DefaultPredictorPath(model_path))) {
    predictor = DefaultPredictorPath(model_path);
  }
  if (predictor.empty() && sparse.mode == "predictor") {
    return absl::FailedPreconditionError(absl::StrCat(
        "--sparse-mode predictor needs a predictor: ", DefaultPredictorPath(model_path),
        " does not exist (make one with scripts/make_predictor.sh ", model_path,
        " TEXT, or pass --predictor FILE)"));
  }
  // The predictor is read first: one made for another model is that, whatever else is missing.
  if (!predictor.empty()) {
    absl::StatusOr<PredictorWeights> weights = PredictorWeights::ReadFor(predictor, model);
    if (!weights.ok()) return weights.status();
    a.predictor = std::make_shared<const PredictorWeights>(*std::move(weights));
    a.predictor_path = predictor;
  }
  // Sparse execution of a calibrated model needs its thresholds; a plan applies them when they
  // exist (or --profile names them, which must then be valid), else runs the model exactly.
  const bool selects = !predictor.empty() || sparse.oracle || a.exact;
  // Auto is the default where it is possible and nothing else was asked for: it needs exact
  // selection (exact zeros, or thresholds found), which a predictor implies.
  const bool may_auto = !sparse.oracle && !a.plan && (sparse.mode.empty() || sparse.mode == "auto");
  const bool required = selects || !sparse.profile_path.empty() || sparse.mode == "auto";
  if (selects || a.plan || may_auto) {
    absl::StatusOr<std::shared_ptr<const FiringThresholds>> firing =
        LoadThresholds(sparse, model_path, model, required);
    // Only the default asked: a model whose profile is unusable runs dense, as without one.
    if (!firing.ok() && (required || a.plan)) return firing.status();
    if (firing.ok()) a.firing = *std::move(firing);
  }
  // A calibrated model's thresholds change its output (+18% perplexity on stories260K at 40%):
  // the default runs them only with a predictor, which was trained for them; without one, the
  // model runs as it is unless --sparse-mode auto (or exact) asks for its thresholds.
  if (may_auto && sparse.mode.empty() && !selects && a.firing != nullptr &&
      a.firing->calibrated()) {
    a.firing = nullptr;
  }
  a.auto_select = may_auto && a.firing != nullptr;
  if (sparse.check && !a.selects() && !a.plan) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--check needs sparse execution: this ", model.config().ffn_act.ToString(),
        " model has no calibrated thresholds (run pi-profile --target-sparsity S, expected ",
        DefaultProfilePath(model_path), ") and no predictor (", DefaultPredictorPath(model_path),
        "; pass --predictor FILE or --oracle-sparse)"));
  }
  if (a.predictor != nullptr) {
    const PredictorWeights* weights = a.predictor.get();
    // A predictor trained on "nonzero" samples of a calibrated model (or the reverse) predicts
    // the wrong thing.
    const bool calibrated = a.firing != nullptr && a.firing->calibrated();
    const std::string expected_rule = calibrated ? "threshold" : "nonzero";
    if (!weights->fire_rule.empty() && weights->fire_rule != expected_rule) {
      return absl::InvalidArgumentError(
          absl::StrCat(predictor, ": the predictor was trained for the '", weights->fire_rule,
                       "' firing rule, this model runs with '", expected_rule, "'"));
    }
  }
  return a;
}

}  // namespace pinfer
