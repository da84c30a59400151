// model.profile.pi: per-layer, per-neuron FFN activation statistics written by pi-profile and read
// by pi-place (what is hot), pi-train-predictor (reports) and the sparse runtime (thresholds of
// calibrated models).
//
// A neuron fires on a token when its activation a_i = act(gate_i·x)·(up_i·x) is non-zero (models
// with exact zeros: the ReLU family) or, for calibrated models (silu/gelu), when the magnitude of
// its gate activation |act(gate_i·x)| exceeds the layer's threshold τ (CATS-style).
//
// Artifact kind: profile. Metadata:
//   model.digest            content digest of the model it was made for
//   profile.tokens          int    tokens observed (per layer: every token passes every layer)
//   profile.context         int    context length of the evaluation chunks
//   profile.datasets        string[] dataset file names
//   profile.target_sparsity float  target of the threshold calibration; -1 when not calibrated
//   profile.chunks          int    (pi-profile; informational) chunks evaluated
//   profile.calibration_tokens int (pi-profile; informational) tokens that calibrated τ
//   provenance.*                   tool, version, arguments, source model path
// Tensors:
//   ffn.fire_count          i32 [n_layers, n_ff]  tokens on which each neuron fired
//   ffn.mean_abs            f32 [n_layers, n_ff]  mean |a_i| over all observed tokens
//   ffn.threshold           f32 [n_layers]        τ per layer (0 for exact-zero models)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "format/metadata.h"

namespace pinfer {

class Model;

// "dir/model.pi" -> "dir/model.profile.pi": where pi-profile writes, and later stages look, by
// default (every stage finds its inputs beside the model by name, so that a flag is needed only
// to use another file).
std::string DefaultProfilePath(const std::string& model_path);

struct ActivationProfile {
  std::string model_digest;
  int64_t n_layers = 0;
  int64_t n_ff = 0;
  int64_t tokens = 0;
  int64_t context = 0;
  std::vector<std::string> datasets;
  double target_sparsity = -1.0;    // < 0: not calibrated
  std::vector<int32_t> fire_count;  // [n_layers * n_ff]
  std::vector<float> mean_abs;      // [n_layers * n_ff]
  std::vector<float> threshold;     // [n_layers]

  bool calibrated() const { return target_sparsity >= 0; }
  // Fraction of tokens on which the neuron fired.
  double Frequency(int64_t layer, int64_t neuron) const {
    return tokens > 0 ? static_cast<double>(fire_count[layer * n_ff + neuron]) / tokens : 0.0;
  }
  // Mean fraction of neurons firing per token in a layer.
  double LayerDensity(int64_t layer) const;

  absl::Status Validate() const;
  // Writes atomically; `extra` adds provenance or report keys.
  absl::Status Write(const std::string& path, const Metadata& extra = Metadata()) const;
  // Reads and validates; when `expected_model_digest` is given, a profile made for another model
  // is rejected with an error naming both files' digests.
  static absl::StatusOr<ActivationProfile> Read(
      const std::string& path, std::optional<std::string> expected_model_digest = std::nullopt);
  // Read() for `model`: also rejects a profile of another model (digest) or layer count.
  static absl::StatusOr<ActivationProfile> ReadFor(const std::string& path, const Model& model);
};

}  // namespace pinfer
