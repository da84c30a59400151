// The FFN activation kinds and their scalar semantics: one definition for the model
// (runtime/model/activation.h adds the parameter and parsing), the CPU reference kernels and the
// CUDA kernels. A plain header with no dependencies, so that nvcc-compiled kernels include it too
// (the functions are then host and device functions).
#pragma once

#include <math.h>

#if defined(__CUDACC__)
#define PINFER_HOST_DEVICE __host__ __device__
#else
#define PINFER_HOST_DEVICE
#endif

namespace pinfer {

enum class ActivationKind : int {
  kNone,  // the identity: only meaningful after a norm (ModelConfig rejects it for the FFN)
  kSilu,
  kGelu,
  kRelu,
  kRelu2,
  kDRelu,
  kFatRelu,
  kShiftedRelu,
  kGeluErf,  // the exact GELU, 0.5·g·(1 + erf(g/√2)) (torch.nn.GELU(), Falcon)
};

// The gate nonlinearity alone, act(g): what decides whether a neuron fires.
PINFER_HOST_DEVICE inline float ActivationGate(ActivationKind kind, float param, float g) {
  switch (kind) {
    case ActivationKind::kNone:
      return g;
    case ActivationKind::kSilu:
      return g / (1.0f + expf(-g));
    case ActivationKind::kGelu: {
      constexpr float kSqrt2OverPi = 0.7978845608028654f;  // tanh approximation, as llama.cpp
      return 0.5f * g * (1.0f + tanhf(kSqrt2OverPi * g * (1.0f + 0.044715f * g * g)));
    }
    case ActivationKind::kRelu:
    case ActivationKind::kDRelu:
      return g > 0.0f ? g : 0.0f;
    case ActivationKind::kRelu2:
      return g > 0.0f ? g * g : 0.0f;
    case ActivationKind::kFatRelu:
      return g > param ? g : 0.0f;
    case ActivationKind::kShiftedRelu:
      return g > param ? g - param : 0.0f;
    case ActivationKind::kGeluErf:
      return 0.5f * g * (1.0f + erff(g * 0.7071067811865476f));
  }
  return g;
}

// A neuron's output from its gate and up products: act(g)·u, with ReLU on u too for drelu.
PINFER_HOST_DEVICE inline float ActivationCombine(ActivationKind kind, float param, float g,
                                                  float u) {
  if (kind == ActivationKind::kDRelu) u = u > 0.0f ? u : 0.0f;
  return ActivationGate(kind, param, g) * u;
}

}  // namespace pinfer
