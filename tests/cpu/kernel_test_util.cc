#include "tests/cpu/kernel_test_util.h"

#include <omp.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "format/quant.h"
#include "runtime/cpu/simd_targets.h"

namespace pinfer::cpu::testing {

void KernelTest::SetUp() {
  const auto& [target, threads] = GetParam();
  ASSERT_TRUE(ForceSimdTarget(target).ok());
  ASSERT_STREQ(SimdTargetName(), target.c_str());
  SetThreads(threads);
}

void KernelTest::TearDown() {
  ASSERT_TRUE(ForceSimdTarget("").ok());
  SetThreads(omp_get_num_procs());
}

std::vector<TargetAndThreads> AllTargetsAndThreads() {
  std::vector<TargetAndThreads> params;
  for (const std::string& target : SupportedSimdTargets()) {
    for (int threads : {1, 2}) params.emplace_back(target, threads);
  }
  return params;
}

std::string ParamName(const ::testing::TestParamInfo<TargetAndThreads>& info) {
  return std::get<0>(info.param) + "_" + std::to_string(std::get<1>(info.param)) + "threads";
}

std::vector<float> RandomVector(size_t n, uint32_t seed, float stddev) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, stddev);
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng);
  return x;
}

std::vector<int32_t> DistinctRows(int64_t rows, int64_t count, uint32_t seed) {
  std::vector<int32_t> all(static_cast<size_t>(rows));
  std::iota(all.begin(), all.end(), 0);
  std::mt19937 rng(seed);
  std::shuffle(all.begin(), all.end(), rng);
  all.resize(static_cast<size_t>(count));
  return all;
}

TestMatrix RandomMatrix(DType dtype, int64_t rows, int64_t cols, uint32_t seed) {
  TestMatrix m;
  m.dtype = dtype;
  m.rows = rows;
  m.cols = cols;
  const std::vector<float> values = RandomVector(rows * cols, seed);
  const size_t row_bytes = *RowBytes(dtype, cols);
  m.bytes.resize(rows * row_bytes);
  m.decoded.resize(rows * cols);
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_TRUE(
        EncodeRow(values.data() + r * cols, cols, dtype, m.bytes.data() + r * row_bytes).ok());
    EXPECT_TRUE(
        DecodeRow(m.bytes.data() + r * row_bytes, cols, dtype, m.decoded.data() + r * cols).ok());
  }
  return m;
}

std::vector<float> ActivationsAsSeenBy(DType weights, const std::vector<float>& x, int64_t n,
                                       int64_t cols) {
  if (!IsQuantizedDType(weights)) return x;
  std::vector<float> out(x.size());
  std::vector<BlockQ8_0> blocks(cols / 32);
  for (int64_t t = 0; t < n; ++t) {
    QuantizeRowQ8_0(x.data() + t * cols, blocks.data(), cols);
    DequantizeRowQ8_0(blocks.data(), out.data() + t * cols, cols);
  }
  return out;
}

}  // namespace pinfer::cpu::testing
