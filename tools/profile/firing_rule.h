// When a neuron "fires" (runtime/model/activation_profile.h): its activation a_i is non-zero for
// models with exact zeros (the ReLU family), or |act(gate_i·x)| exceeds the layer's calibrated
// threshold τ for models without them (silu, gelu).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "runtime/model/activation.h"

namespace pinfer {

struct FiringRule {
  Activation activation;
  // Empty: exact zeros (a_i != 0 fires). Else τ per layer, on |activation.Gate(gate_i·x)|.
  std::vector<float> thresholds;

  bool calibrated() const { return !thresholds.empty(); }
  // Whether neuron i fired, from its gate product g and its activation a.
  bool Fires(int64_t layer, float gate, float activation_value) const {
    if (!calibrated()) return activation_value != 0.0f;
    return std::fabs(activation.Gate(gate)) > thresholds[static_cast<size_t>(layer)];
  }
};

}  // namespace pinfer
