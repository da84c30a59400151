// When a computed FFN neuron counts as firing, and how a calibrated model zeroes the others. One
// type for the profiler (which counts firing neurons), the predictor's training samples and the
// runtime (which applies the rule to what it computes).
//
// A neuron fires when its activation a_i is non-zero for models with exact zeros (the ReLU
// family); for models without them (silu, gelu), when |act(gate_i·x)| exceeds the layer's
// threshold τ calibrated by pi-profile (CATS-style). At run time a calibrated model computes
// a_i = act(g_i)·u_i when |act(g_i)| > τ, else exactly 0.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/model/activation.h"

namespace pinfer {

struct FiringThresholds {
  Activation activation;
  // Empty: the activation has exact zeros (a_i != 0 fires). Else τ per layer, on |act(g_i)|.
  std::vector<float> per_layer;

  bool calibrated() const { return !per_layer.empty(); }
  // Whether neuron i of `layer` fired, from its gate product g and its activation a.
  bool Fires(int64_t layer, float gate, float activation_value) const;
  // Zeroes a[j] (computed from gate products g[j]) of the neurons that do not fire: the
  // calibrated model's rule; nothing for exact-zero activations.
  void Apply(int64_t layer, const float* gate, int64_t count, float* a) const;
};

}  // namespace pinfer
