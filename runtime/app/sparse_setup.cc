#include "runtime/app/sparse_setup.h"

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "runtime/common/cli_flags.h"

namespace pinfer {

void AddSparseFlags(CLI::App& app, SparseFlags& flags) {
  app.add_option("--predictor", flags.predictor_path,
                 "activation predictor for sparse FFN execution (default: MODEL.predictor.pi "
                 "beside the model; when it exists, execution is sparse)");
  app.add_option("--sparse-mode", flags.mode,
                 "auto (the default when a sparse mode is possible): per layer, for decode and "
                 "prompts apart, dense, exact or the predictor by measured cost, the predictor's "
                 "own included; exact: gate-first selection without a predictor (the dense "
                 "output, fewer bytes read); predictor: the predictor's selection");
  app.add_flag("--dense", flags.dense, "force dense FFN execution, even with a predictor");
  app.add_flag("--check", flags.check,
               "sparse execution also computes the true activations and reports per layer the "
               "recall, false-negative mass and actual vs selected density");
  app.add_flag("--oracle-sparse", flags.oracle,
               "sparse execution selecting the true activations instead of predicting them "
               "(exact; for tests, not faster)");
  app.add_option("--sparse-crossover", flags.crossover,
                 "run a layer sparse when its selected density is below this (default: the "
                 "crossover measured at load)")
      ->check(FiniteIn(0.0, 1.0));
  app.add_option("--profile", flags.profile_path,
                 "profile with the calibrated thresholds of a silu/gelu model (default: "
                 "MODEL.profile.pi beside the model)");
}

absl::Status ValidateSparseFlags(const SparseFlags& flags) {
  if (flags.dense && (flags.oracle || !flags.predictor_path.empty() || flags.check)) {
    return absl::InvalidArgumentError(
        "--dense cannot be combined with --predictor, --oracle-sparse or --check");
  }
  if (!flags.mode.empty() && flags.mode != "auto" && flags.mode != "exact" &&
      flags.mode != "predictor") {
    return absl::InvalidArgumentError(
        absl::StrCat("--sparse-mode must be auto, exact or predictor, not '", flags.mode, "'"));
  }
  if (flags.mode == "auto" && (flags.dense || flags.oracle)) {
    return absl::InvalidArgumentError(
        "--sparse-mode auto cannot be combined with --dense or --oracle-sparse");
  }
  if (flags.mode == "exact" && (flags.dense || flags.oracle || !flags.predictor_path.empty())) {
    return absl::InvalidArgumentError(
        "--sparse-mode exact selects without a predictor: it cannot be combined with --dense, "
        "--oracle-sparse or --predictor");
  }
  if (flags.mode == "predictor" && (flags.dense || flags.oracle)) {
    return absl::InvalidArgumentError(
        "--sparse-mode predictor cannot be combined with --dense or --oracle-sparse");
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

}  // namespace pinfer
