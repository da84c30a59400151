// Activation variants of the FFN and of the optional ReLU after the norms, in the `name[:param]`
// grammar that pi-convert's flags and the model metadata share:
//   FFN:  silu | gelu | relu | relu2 | drelu | fatrelu:T | shifted_relu:S
//   norm: none | shifted_relu:S
// FFN semantics, for gate g = gate_i·x and up u = up_i·x of neuron i:
//   silu         a = g·sigmoid(g) · u
//   gelu         a = gelu_tanh(g) · u            (the tanh approximation, as llama.cpp)
//   gelu_erf     a = gelu(g) · u                 (exact, erf; gate-less FFNs only: Falcon)
//   relu         a = max(g, 0) · u
//   relu2        a = max(g, 0)² · u
//   drelu        a = max(g, 0) · max(u, 0)       (Bamboo, TurboSparse)
//   fatrelu:T    a = (g > T ? g : 0) · u          (ProSparse)
//   shifted_relu:S  a = max(g - S, 0) · u        ("ReLU Strikes Back" stage 2)
// Norm activation: the normed, weighted vector h becomes max(h - S, 0) (none: unchanged).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "runtime/cpu/activation_kind.h"

namespace pinfer {

struct Activation {
  ActivationKind kind = ActivationKind::kSilu;
  float param = 0.0f;  // T of fatrelu, S of shifted_relu; 0 otherwise

  // Parses the grammar above. `for_norm` restricts the names to none|shifted_relu:S.
  static absl::StatusOr<Activation> Parse(std::string_view text, bool for_norm = false);
  std::string ToString() const;

  // True for the ReLU family: inactive neurons give exactly zero, so sparsity needs no threshold.
  bool HasExactZeros() const;
  // The gate nonlinearity alone (what decides whether a neuron fires): silu(g), relu(g - S), ...
  float Gate(float g) const;
  // The neuron's output a from its gate and up projections (the table above). Scalar reference.
  float Combine(float g, float u) const;
  // The norm activation applied to one element.
  float ApplyToNorm(float h) const;

  bool operator==(const Activation&) const = default;
};

}  // namespace pinfer
