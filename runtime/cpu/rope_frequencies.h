// RoPE's rotation frequencies: pair i of a head (elements 2i, 2i+1 in pinfer's interleaved layout)
// turns by pos · freq(i), freq(i) = theta^(-2i/head_dim) / factor(i). The per-pair divisors are
// how a model scales RoPE for long contexts, as llama.cpp's rope_freqs tensor holds them: Llama 3's
// rope_scaling (1 for short wavelengths, `factor` for long ones, interpolated between) and linear
// scaling (`factor` for every pair). Without them every divisor is 1 (plain RoPE).
//
// Header-only and plain data, so that the CPU kernels, the KV cache's context shift and the CUDA
// kernel (which takes it by value) compute the same frequencies from the same numbers.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define PINFER_ROPE_HOST_DEVICE __host__ __device__
#else
#define PINFER_ROPE_HOST_DEVICE
#endif

namespace pinfer {

// Pairs a factor table holds: head_dim up to 512 (real models use 64 to 256).
inline constexpr int64_t kMaxRopePairs = 256;

struct RopeFrequencies {
  double theta = 10000.0;
  int32_t n_factors = 0;  // 0: plain RoPE; else head_dim / 2 divisors in factors
  float factors[kMaxRopePairs] = {};

  RopeFrequencies() = default;
  // Plain RoPE of base `theta` (implicit: a theta is a RoPE without scaling).
  PINFER_ROPE_HOST_DEVICE RopeFrequencies(double base) : theta(base) {}  // NOLINT

  // The angular frequency of pair `pair` of a head of `head_dim`, in double: pos · freq reaches
  // thousands of radians, beyond what f32 resolves.
  PINFER_ROPE_HOST_DEVICE double Frequency(int64_t pair, int64_t head_dim) const {
    const double f = pow(theta, -static_cast<double>(2 * pair) / static_cast<double>(head_dim));
    return n_factors > 0 ? f / static_cast<double>(factors[pair]) : f;
  }
};

}  // namespace pinfer
