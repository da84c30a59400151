// Compares measured firing counts with a synthetic model's planted probabilities, the way both
// firing tests (the reference forward pass and pinfer's runtime) need it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/synth/synth_model.h"

namespace pinfer::synth::testing {

// fired[layer][neuron]: in how many of `tokens` token positions the neuron fired. Checks, per
// layer (with gtest expectations): the mean density, the hot set, eight rank groups and the
// per-neuron correlation. Prints one summary line per layer.
void ExpectFiringMatchesPlanted(const std::string& model_path, const SynthReport& report,
                                const std::vector<std::vector<int64_t>>& fired, int64_t tokens);

}  // namespace pinfer::synth::testing
