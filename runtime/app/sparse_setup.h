// The flags and the load step of neuron-sparse CPU execution (issue 7), shared by pi-run and
// pi-server through RuntimeFlags/LoadRuntime:
//   --predictor FILE   the activation predictor (default: model.predictor.pi beside the model;
//                      when that file exists, execution is sparse without any flag)
//   --dense            force dense execution (for comparison)
//   --check            also compute the true activations and report, per layer, recall,
//                      false-negative mass, actual against selected density
//   --oracle-sparse    select the true activations instead of predicting them (tests: exact,
//                      not faster, since finding them costs a dense FFN)
//   --sparse-crossover D  run a layer sparse when its selected density is below D, instead of the
//                      crossover measured at load
//   --profile FILE     the profile whose calibrated thresholds a silu/gelu model runs with
//                      (default: model.profile.pi beside the model)
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/session.h"
#include "runtime/exec/sparse_ffn.h"
#include "runtime/model/model.h"

namespace CLI {
class App;
}  // namespace CLI

namespace pinfer {

struct SparseFlags {
  std::string predictor_path;  // empty: the default path, if the file exists
  std::string profile_path;    // empty: the default path
  bool dense = false;
  bool check = false;
  bool oracle = false;
  double crossover = -1.0;  // < 0: measured at load
};

void AddSparseFlags(CLI::App& app, SparseFlags& flags);
absl::Status ValidateSparseFlags(const SparseFlags& flags);

// When a neuron fires: for the ReLU family, exactly when it is nonzero (no thresholds); for a
// silu/gelu model, when |act(gate·x)| exceeds its layer's τ from the calibrated profile (--profile,
// else the one beside the model). Errors name the profile and what is missing.
absl::StatusOr<FiringThresholds> LoadFiringThresholds(const SparseFlags& flags,
                                                      const std::string& model_path,
                                                      const Model& model);

// Decides between dense and sparse execution for the model at `model_path` and, for sparse,
// installs a SparseFfn in every layer of `executor` and returns it (null: dense). Errors name the
// file or the flag: a predictor or profile made for another model, a calibrated model without
// calibrated thresholds, --check without sparse execution.
absl::StatusOr<std::shared_ptr<SparseFfn>> SetUpSparseExecution(const SparseFlags& flags,
                                                                const std::string& model_path,
                                                                const Model& model,
                                                                Executor& executor);

// stderr lines after a run, each starting with `log_prefix`: the FFN mode and, for sparse, the
// mean selected density, FFN bytes per token, the dense-fallback count and (--check) the per-layer
// check report (the bytes and GB/s of the whole forward pass are LogPhase's lines of pi-run).
void LogSparseSummary(std::string_view log_prefix, const SparseFfn* sparse, const Model& model);

}  // namespace pinfer
