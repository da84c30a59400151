// Shared fixtures for the CPU kernel tests: every test runs once per SIMD target compiled into the
// kernels that this CPU supports (so the AVX2 and SSE4 paths are checked on an AVX-512 machine
// too) and once per thread count, against the scalar references.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "format/dtype.h"
#include "gtest/gtest.h"
#include "runtime/cpu/kernels.h"

namespace pinfer::cpu::testing {

using TargetAndThreads = std::tuple<std::string, int>;

// Pins the SIMD target and the thread count for the test, restores both afterwards.
class KernelTest : public ::testing::TestWithParam<TargetAndThreads> {
 protected:
  void SetUp() override;
  void TearDown() override;
};

// All (target, threads) pairs: every supported target x {1, 2} threads.
std::vector<TargetAndThreads> AllTargetsAndThreads();
std::string ParamName(const ::testing::TestParamInfo<TargetAndThreads>& info);

std::vector<float> RandomVector(size_t n, uint32_t seed, float stddev = 1.0f);
// `count` distinct rows of [0, rows), in random (unsorted) order: a neuron list of the Gather*
// kernels.
std::vector<int32_t> DistinctRows(int64_t rows, int64_t count, uint32_t seed);

// A weight matrix in one dtype together with its exact f32 decoding (what the kernels multiply).
struct TestMatrix {
  DType dtype;
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> bytes;
  std::vector<float> decoded;  // [rows, cols]
  MatrixView view() const { return MakeMatrixView(dtype, rows, cols, bytes.data()); }
};
TestMatrix RandomMatrix(DType dtype, int64_t rows, int64_t cols, uint32_t seed);

// What the kernels compute from f32 activations for weights of this dtype: the activations
// themselves for float weights, their q8_0 round trip (pinfer::QuantizeRowQ8_0, then dequantize)
// for q8_0/q4_0/q4_0x16 weights. x: [n, cols].
std::vector<float> ActivationsAsSeenBy(DType weights, const std::vector<float>& x, int64_t n,
                                       int64_t cols);

inline bool IsQuantizedDType(DType dtype) {
  return dtype == DType::kQ8_0 || dtype == DType::kQ4_0 || dtype == DType::kQ4_0x16;
}

}  // namespace pinfer::cpu::testing
