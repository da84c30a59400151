// PowerInfer's activation statistics <-> model.profile.pi, with LibTorch (torch.save's format):
//   pi-train-predictor --import-activations DIR   DIR/activation_<l>.pt -> model.profile.pi
//   pi-train-predictor --export-activations DIR   model.profile.pi -> DIR/activation_<l>.pt
// PowerInfer's solver (powerinfer-py/powerinfer/solver.py, export_split.py) torch.load's one file
// per layer, l = 0 .. n_layers - 1, each a 1-D tensor of n_ff per-neuron firing counts (it sorts
// them, sums them in groups and takes the top-k as the GPU's neurons). Counts of any numeric dtype
// are read; they are written as int64.
//
// The files do not record how many tokens were counted, which model.profile.pi needs for
// frequencies: the import takes --activation-tokens, or by default the largest count of any
// neuron (so the hottest neuron has frequency 1; what pi-place ranks by is unchanged, since only
// the order and the relative mass of the counts matter to it). mean_abs is not in the files and
// is written as 0; the firing thresholds as 0 (PowerInfer's models are ReLU models).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace pinfer {

struct ActivationFilesOptions {
  std::string model_path;
  std::string directory;     // holds activation_<l>.pt
  std::string profile_path;  // "": beside the model (model.profile.pi)
  int64_t tokens = 0;        // import: 0 = the largest count
  std::string command_line;  // provenance
};

struct ActivationFilesReport {
  std::string direction;  // "import" or "export"
  std::string model_path;
  std::string directory;
  std::string profile_path;
  int64_t n_layers = 0;
  int64_t n_ff = 0;
  int64_t tokens = 0;
  bool tokens_estimated = false;  // import without --activation-tokens
  double mean_density = 0;        // over layers: fired counts / (tokens · n_ff)

  std::string ToText() const;
  nlohmann::json ToJson() const;
};

absl::StatusOr<ActivationFilesReport> ImportPowerInferActivations(
    const ActivationFilesOptions& options);
absl::StatusOr<ActivationFilesReport> ExportPowerInferActivations(
    const ActivationFilesOptions& options);

}  // namespace pinfer
