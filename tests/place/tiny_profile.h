// A real activation profile of a tiny model for pi-place's tests, until pi-profile exists: a
// direct forward pass of model.pi (Llama architecture with its declared FFN and norm activations,
// runtime/cpu's scalar reference kernels) over text the model generates itself from BOS, counting
// per layer and neuron the tokens on which the FFN activation is non-zero. Only for models of a
// few hundred thousand parameters: it decodes every weight matrix to f32.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "format/pi_file.h"
#include "runtime/model/activation_profile.h"

namespace pinfer::testing_support {

struct TinyRun {
  ActivationProfile profile;
  std::vector<std::vector<int32_t>> sequences;  // generated token ids, BOS excluded
  double zero_fraction = 0;                     // of all FFN activations observed
};

// `sequences` sequences of `length` tokens each, starting from BOS; temperature 0 is greedy,
// otherwise tokens are sampled (seeded).
absl::StatusOr<TinyRun> ProfileBySelfGeneration(const PiFile& model, int sequences, int length,
                                                double temperature, uint64_t seed);

// Concatenated pieces of `tokens` ("▁" as a space, <0xXX> as its byte).
absl::StatusOr<std::string> DecodeTokens(const PiFile& model, const std::vector<int32_t>& tokens);

}  // namespace pinfer::testing_support
