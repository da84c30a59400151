// The flags of neuron-sparse execution, shared by pi-run and pi-server through
// RuntimeFlags/LoadRuntime (artifacts.h resolves the files they name):
//   --sparse-mode M    auto (the default whenever a sparse mode is possible: a ReLU-family model,
//                      a calibrated silu/gelu model or a predictor): per layer, and for decode and
//                      prompt batches apart, dense, exact or the predictor by measured cost, the
//                      predictor's own cost counted; exact: gate-first selection, no predictor
//                      (every gate row, then the up and down rows of the neurons that fire; the
//                      dense output); predictor: the predictor's selection, which must exist
//   --predictor FILE   the activation predictor (default: model.predictor.pi beside the model;
//                      when that file exists, auto has it as a candidate)
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

#include <string>

#include "absl/status/status.h"

namespace CLI {
class App;
}  // namespace CLI

namespace pinfer {

struct SparseFlags {
  std::string predictor_path;  // empty: the default path, if the file exists
  std::string profile_path;    // empty: the default path
  std::string mode;            // --sparse-mode: "" (auto where possible), "auto", "exact", "predictor"
  bool dense = false;
  bool check = false;
  bool oracle = false;
  double crossover = -1.0;  // < 0: measured at load
};

void AddSparseFlags(CLI::App& app, SparseFlags& flags);
absl::Status ValidateSparseFlags(const SparseFlags& flags);

}  // namespace pinfer
