// A real activation profile for pi-place's tests, until pi-profile exists: the runtime's forward
// pass (Model, Executor, Session) over TinyStories text, with a ForwardObserver counting per
// layer and neuron the tokens on which the FFN activation is non-zero (the profile's definition
// for models with exact zeros). The text is cut into chunks of the model's context, each
// starting with BOS, as pi-profile will.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/model/activation_profile.h"

namespace pinfer::testing_support {

struct TextProfile {
  ActivationProfile profile;
  double zero_fraction = 0;  // of all FFN activations observed
};

// Profiles `chunks` chunks of `chunk_tokens` tokens of `text_path` (0: the model's context).
absl::StatusOr<TextProfile> ProfileOnText(const std::string& model_path,
                                          const std::string& text_path, int chunks,
                                          int chunk_tokens = 0);

}  // namespace pinfer::testing_support
