// GatherMatMul / GatherMatMulTransposedAccumulate (the neuron-sparse kernels) against their scalar
// references, for every weight dtype, on every SIMD target and thread count (the fixtures of
// tests/cpu). The row lists are distinct rows in shuffled order, from one row to all of them, so
// that results must follow the list's order and the per-thread blocks of the list are exercised.
//
// Tolerances as in tests/cpu/dot_test.cc and accumulate_test.cc: the reference multiplies the
// same decoded weights by the same activations (q8_0 round trip included for quantized weights)
// and sums in f64; the bound is a small multiple of 2^-24 of Σ|w·x| per output element.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "runtime/cpu/kernels.h"
#include "runtime/cpu/reference_kernels.h"
#include "tests/cpu/kernel_test_util.h"

namespace pinfer::cpu::testing {
namespace {

constexpr double kDotTolerance = 1e-5;
constexpr double kAccumulateTolerance = 2e-5;

const DType kAllDTypes[] = {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0};

struct Shape {
  int64_t rows, cols;
};

std::vector<Shape> ShapesFor(DType dtype) {
  if (IsQuantizedDType(dtype)) return {{1, 32}, {37, 96}, {300, 544}, {64, 1088}};
  return {{1, 1}, {17, 172}, {300, 544}, {40, 1000}};
}

std::vector<int64_t> CountsFor(int64_t rows) {
  std::vector<int64_t> counts = {1, rows / 10, rows};
  counts.erase(std::remove(counts.begin(), counts.end(), 0), counts.end());
  return counts;
}

void ExpectGatherMatMulMatchesReference(DType dtype, Shape shape, int64_t count, int64_t n,
                                        uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << DTypeName(dtype) << " " << shape.rows << "x" << shape.cols
                                    << " count=" << count << " n=" << n);
  const TestMatrix w = RandomMatrix(dtype, shape.rows, shape.cols, seed);
  const std::vector<int32_t> rows = DistinctRows(shape.rows, count, seed + 1);
  const std::vector<float> x = RandomVector(n * shape.cols, seed + 2);
  const std::vector<float> seen = ActivationsAsSeenBy(dtype, x, n, shape.cols);

  std::vector<float> expected(n * count);
  reference::GatherMatMul(w.view(), rows.data(), count, seen.data(), n, expected.data());
  std::vector<float> actual(n * count, -1.0f);
  GatherMatMul(w.view(), rows.data(), count, x.data(), n, actual.data());
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t j = 0; j < count; ++j) {
      double magnitude = 0.0;
      for (int64_t c = 0; c < shape.cols; ++c) {
        magnitude += std::fabs(w.decoded[rows[j] * shape.cols + c] * seen[t * shape.cols + c]);
      }
      ASSERT_NEAR(actual[t * count + j], expected[t * count + j], kDotTolerance * magnitude + 1e-30)
          << "token " << t << " entry " << j << " (row " << rows[j] << ")";
    }
  }
}

void ExpectGatherAccumulateMatchesReference(DType dtype, Shape shape, int64_t count, int64_t n,
                                            uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << DTypeName(dtype) << " " << shape.rows << "x" << shape.cols
                                    << " count=" << count << " n=" << n);
  const TestMatrix w = RandomMatrix(dtype, shape.rows, shape.cols, seed);
  const std::vector<int32_t> rows = DistinctRows(shape.rows, count, seed + 1);
  // About half of the gathered activations exactly zero (predicted active, but did not fire).
  std::vector<float> a = RandomVector(n * count, seed + 2);
  for (float& v : a) v = v > 0.0f ? v : 0.0f;
  const std::vector<float> y0 = RandomVector(n * shape.cols, seed + 3);

  std::vector<float> expected = y0;
  reference::GatherMatMulTransposedAccumulate(w.view(), rows.data(), count, a.data(), n,
                                              expected.data());
  std::vector<float> actual = y0;
  GatherMatMulTransposedAccumulate(w.view(), rows.data(), count, a.data(), n, actual.data());
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t c = 0; c < shape.cols; ++c) {
      double magnitude = 0.0;
      for (int64_t j = 0; j < count; ++j) {
        magnitude += std::fabs(a[t * count + j] * w.decoded[rows[j] * shape.cols + c]);
      }
      const float y = y0[t * shape.cols + c];
      ASSERT_NEAR(actual[t * shape.cols + c], expected[t * shape.cols + c],
                  kAccumulateTolerance * magnitude + std::ldexp(std::fabs(y), -23))
          << "token " << t << " column " << c;
    }
  }
}

class GatherKernelsTest : public KernelTest {};

TEST_P(GatherKernelsTest, GatherMatMulMatchesReference) {
  uint32_t seed = 1;
  for (DType dtype : kAllDTypes) {
    for (Shape shape : ShapesFor(dtype)) {
      for (int64_t count : CountsFor(shape.rows)) {
        for (int64_t n : {1, 5}) {
          ExpectGatherMatMulMatchesReference(dtype, shape, count, n, seed);
          seed += 3;
        }
      }
    }
  }
}

TEST_P(GatherKernelsTest, GatherAccumulateMatchesReference) {
  uint32_t seed = 1000;
  for (DType dtype : kAllDTypes) {
    for (Shape shape : ShapesFor(dtype)) {
      for (int64_t count : CountsFor(shape.rows)) {
        for (int64_t n : {1, 3}) {
          ExpectGatherAccumulateMatchesReference(dtype, shape, count, n, seed);
          seed += 4;
        }
      }
    }
  }
}

// With every row listed in order, the gathered products are the dense ones.
TEST_P(GatherKernelsTest, AllRowsInOrderEqualTheDenseKernels) {
  for (DType dtype : kAllDTypes) {
    SCOPED_TRACE(DTypeName(dtype));
    const TestMatrix w = RandomMatrix(dtype, 96, 256, 7);
    std::vector<int32_t> rows(96);
    std::iota(rows.begin(), rows.end(), 0);
    const std::vector<float> x = RandomVector(256, 8);
    std::vector<float> dense(96), gathered(96);
    MatVec(w.view(), x.data(), dense.data());
    GatherMatMul(w.view(), rows.data(), 96, x.data(), 1, gathered.data());
    EXPECT_EQ(gathered, dense);
  }
}

// An empty list computes nothing and leaves the outputs alone.
TEST_P(GatherKernelsTest, EmptyListIsANoOp) {
  const TestMatrix w = RandomMatrix(DType::kF16, 8, 64, 3);
  const std::vector<float> x = RandomVector(64, 4);
  std::vector<float> y(64, 2.5f);
  GatherMatMulTransposedAccumulate(w.view(), nullptr, 0, x.data(), 1, y.data());
  EXPECT_EQ(y, std::vector<float>(64, 2.5f));
  float out = -1.0f;
  GatherMatMul(w.view(), nullptr, 0, x.data(), 1, &out);
  EXPECT_EQ(out, -1.0f);
}

INSTANTIATE_TEST_SUITE_P(AllTargets, GatherKernelsTest, ::testing::ValuesIn(AllTargetsAndThreads()),
                         ParamName);

}  // namespace
}  // namespace pinfer::cpu::testing
