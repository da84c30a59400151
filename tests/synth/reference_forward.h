// A plain, scalar Llama forward pass over a (small) model.pi, written independently of the
// runtime, that records which FFN neurons fire: the measurement the pi-synth tests compare with
// the planted firing probabilities.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace pinfer::synth::testing {

struct FiringMeasurement {
  int64_t tokens = 0;                       // token positions run
  std::vector<std::vector<int64_t>> fired;  // [layer][neuron]: positions where gate·x > T (T of fatrelu:T, 0 for relu)
  // [position][layer]: the neurons that fired there, in increasing order (positions counted over
  // all sequences), so that two models can be compared token by token.
  std::vector<std::vector<std::vector<int32_t>>> active;
  // Per layer: mean over tokens of |h_content|²/(d - B) of the residual entering the FFN norm.
  std::vector<double> content_energy;
  double max_abs_activation = 0;  // largest |value| in any residual, FFN activation or logit
  bool finite = true;             // no inf/NaN anywhere
};

// Runs `sequences` sequences of `length` random token ids (uniform over the vocabulary, from
// `seed`) through the model with causal attention and RoPE, and counts firing neurons.
absl::StatusOr<FiringMeasurement> MeasureFiring(const std::string& model_path, int sequences,
                                                int length, uint64_t seed, int64_t bias_dims);

}  // namespace pinfer::synth::testing
