#include "runtime/app/sparse_setup.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <utility>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "runtime/common/cli_common.h"
#include "runtime/exec/neuron_selector.h"
#include "runtime/model/activation_profile.h"
#include "runtime/model/predictor_weights.h"

namespace pinfer {

void AddSparseFlags(CLI::App& app, SparseFlags& flags) {
  app.add_option("--predictor", flags.predictor_path,
                 "activation predictor for sparse FFN execution (default: MODEL.predictor.pi "
                 "beside the model; when it exists, execution is sparse)");
  app.add_flag("--dense", flags.dense, "force dense FFN execution, even with a predictor");
  app.add_flag("--check", flags.check,
               "sparse execution also computes the true activations and reports per layer the "
               "recall, false-negative mass and actual vs selected density");
  app.add_flag("--oracle-sparse", flags.oracle,
               "sparse execution selecting the true activations instead of predicting them "
               "(exact; for tests, not faster)");
  app.add_option("--sparse-crossover", flags.crossover,
                 "run a layer sparse when its selected density is below this (default: the "
                 "crossover measured at load)");
  app.add_option("--profile", flags.profile_path,
                 "profile with the calibrated thresholds of a silu/gelu model (default: "
                 "MODEL.profile.pi beside the model)");
}

absl::Status ValidateSparseFlags(const SparseFlags& flags) {
  if (flags.dense && (flags.oracle || !flags.predictor_path.empty() || flags.check)) {
    return absl::InvalidArgumentError(
        "--dense cannot be combined with --predictor, --oracle-sparse or --check");
  }
  if (flags.oracle && !flags.predictor_path.empty()) {
    return absl::InvalidArgumentError("--oracle-sparse and --predictor cannot be combined");
  }
  if (flags.crossover >= 0.0 ? flags.crossover > 1.0 : flags.crossover != -1.0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--sparse-crossover must be a density in [0, 1], got ", flags.crossover));
  }
  return absl::OkStatus();
}

namespace {

absl::StatusOr<std::shared_ptr<NeuronSelector>> LoadPredictor(const std::string& path,
                                                              const Model& model,
                                                              const FiringThresholds& firing) {
  absl::StatusOr<PredictorWeights> weights =
      PredictorWeights::Read(path, model.file().ContentDigestHex());
  if (!weights.ok()) return weights.status();
  const ModelConfig& c = model.config();
  if (weights->n_layers() != c.n_layers || weights->dim != c.dim || weights->n_ff != c.n_ff) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": a predictor for ", weights->n_layers(),
                                                   " layers of dim ", weights->dim, " and n_ff ",
                                                   weights->n_ff, ", the model has ", c.n_layers,
                                                   " layers of dim ", c.dim, " and n_ff ", c.n_ff));
  }
  // A predictor trained on "nonzero" samples of a calibrated model (or the reverse) predicts the
  // wrong thing.
  const std::string expected_rule = firing.calibrated() ? "threshold" : "nonzero";
  if (!weights->fire_rule.empty() && weights->fire_rule != expected_rule) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": the predictor was trained for the '", weights->fire_rule,
                     "' firing rule, this model runs with '", expected_rule, "'"));
  }
  return std::make_shared<PredictorSelector>(
      std::make_shared<const PredictorWeights>(*std::move(weights)));
}

}  // namespace

absl::StatusOr<FiringThresholds> LoadFiringThresholds(const SparseFlags& flags,
                                                      const std::string& model_path,
                                                      const Model& model) {
  FiringThresholds firing;
  firing.activation = model.config().ffn_act;
  if (firing.activation.HasExactZeros()) return firing;
  const bool explicit_path = !flags.profile_path.empty();
  const std::string path = explicit_path ? flags.profile_path : DefaultProfilePath(model_path);
  if (!explicit_path && !std::filesystem::exists(path)) {
    return absl::FailedPreconditionError(absl::StrCat(
        model_path, ": sparse execution of a ", firing.activation.ToString(),
        " model needs calibrated thresholds: run pi-profile --target-sparsity S (expected ", path,
        ", or pass --profile FILE)"));
  }
  absl::StatusOr<ActivationProfile> profile =
      ActivationProfile::Read(path, model.file().ContentDigestHex());
  if (!profile.ok()) return profile.status();
  if (!profile->calibrated()) {
    return absl::FailedPreconditionError(
        absl::StrCat(path,
                     ": the profile has no calibrated thresholds (made without "
                     "--target-sparsity), which a ",
                     firing.activation.ToString(), " model needs for sparse execution"));
  }
  if (profile->n_layers != model.n_layers()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": ", profile->n_layers, " layers of thresholds, the model has ", model.n_layers()));
  }
  firing.per_layer = profile->threshold;
  return firing;
}

absl::StatusOr<std::shared_ptr<SparseFfn>> SetUpSparseExecution(const SparseFlags& flags,
                                                                const std::string& model_path,
                                                                const Model& model,
                                                                Executor& executor) {
  if (absl::Status s = ValidateSparseFlags(flags); !s.ok()) return s;
  if (flags.dense) return nullptr;
  std::string predictor = flags.predictor_path;
  if (predictor.empty() && !flags.oracle) {
    const std::string beside = DefaultPredictorPath(model_path);
    if (std::filesystem::exists(beside)) predictor = beside;
  }
  if (predictor.empty() && !flags.oracle) {
    if (flags.check) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--check needs sparse execution: no predictor (", DefaultPredictorPath(model_path),
          " does not exist; pass --predictor FILE or --oracle-sparse)"));
    }
    return nullptr;  // dense
  }
  absl::StatusOr<FiringThresholds> firing = LoadFiringThresholds(flags, model_path, model);
  if (!firing.ok()) return firing.status();
  std::shared_ptr<NeuronSelector> selector;
  if (flags.oracle) {
    selector = std::make_shared<OracleSelector>(model, *firing);
  } else {
    absl::StatusOr<std::shared_ptr<NeuronSelector>> loaded =
        LoadPredictor(predictor, model, *firing);
    if (!loaded.ok()) return loaded.status();
    selector = *std::move(loaded);
  }
  SparseFfnOptions options;
  options.firing = *std::move(firing);
  options.check = flags.check;
  if (flags.crossover >= 0.0) {
    options.cost = SparseCostModel::Fixed(model.n_layers(), flags.crossover);
  } else {
    absl::StatusOr<SparseCostModel> cost = MeasureSparseCostModel(model);
    if (!cost.ok()) return cost.status();
    options.cost = *std::move(cost);
  }
  auto sparse = std::make_shared<SparseFfn>(model, std::move(selector), std::move(options));
  if (absl::Status s = executor.SetFfnForAllLayers(sparse); !s.ok()) return s;
  return sparse;
}

void LogSparseSummary(std::string_view log_prefix, const SparseFfn* sparse, const Model& model) {
  const std::string prefix(log_prefix);
  if (sparse == nullptr) {
    std::fprintf(stderr, "%sffn: dense\n", prefix.c_str());
    return;
  }
  const int64_t n_ff = model.config().n_ff;
  SparseLayerStats total;
  // What the dense FFN would have read for the same passes (each layer's weights once per pass).
  double dense_bytes = 0.0;
  for (size_t l = 0; l < sparse->stats().size(); ++l) {
    const SparseLayerStats& s = sparse->stats()[l];
    total.calls += s.calls;
    total.dense_calls += s.dense_calls;
    total.tokens += s.tokens;
    total.selected += s.selected;
    total.weight_bytes += s.weight_bytes;
    dense_bytes += static_cast<double>(model.layer(static_cast<int64_t>(l)).FfnBytes()) * s.calls;
  }
  // Every token passes every layer once.
  const double tokens = static_cast<double>(
      std::max<int64_t>(1, total.tokens / std::max<int64_t>(1, model.n_layers())));
  const std::string name(sparse->selector().name());
  std::fprintf(stderr,
               "%sffn: sparse (%s selection; cost model %s): mean selected density %.3f, %lld/%lld "
               "layer calls fell back to dense, FFN %.3f MB read per token (dense: %.3f MB)\n",
               prefix.c_str(), name.c_str(), sparse->options().cost.source.c_str(),
               total.SelectedDensity(n_ff), static_cast<long long>(total.dense_calls),
               static_cast<long long>(total.calls),
               static_cast<double>(total.weight_bytes) / tokens / 1e6, dense_bytes / tokens / 1e6);
  if (sparse->options().check) {
    const std::string report = FormatSparseReport(*sparse, n_ff, /*with_check=*/true);
    size_t begin = 0;
    while (begin < report.size()) {
      const size_t end = report.find('\n', begin);
      std::fprintf(stderr, "%scheck: %s\n", prefix.c_str(),
                   report.substr(begin, end - begin).c_str());
      begin = end == std::string::npos ? report.size() : end + 1;
    }
  }
}

}  // namespace pinfer
