// MatVecTransposedAccumulate / MatMulTransposedAccumulate and DecodeRows against the references,
// for every weight dtype, on every SIMD target and thread count.
//
// Tolerance: both sides multiply the same decoded weights by the same f32 activations (no
// activation quantization here); the reference sums in f64, the kernel in f32 along the rows, one
// rounding per row (or per group of four rows) into a running sum bounded by Σ_r |a_r·w_rc|.
// With <= 300 rows that is < 300 · 2^-24 < 2e-5 of Σ|a·w|, checked per output element; on top
// sits the rounding of the initial y (added, not multiplied), covered by 2^-23·|y0|.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "format/quant.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/reference_kernels.h"
#include "tests/cpu/kernel_test_util.h"

namespace pinfer::cpu::testing {
namespace {

constexpr double kRelativeTolerance = 2e-5;

const DType kAllDTypes[] = {DType::kF32,  DType::kF16,  DType::kBF16,
                            DType::kQ8_0, DType::kQ4_0, DType::kQ4_0x16};

struct Shape {
  int64_t rows, cols;
};

std::vector<Shape> ShapesFor(DType dtype) {
  if (IsQuantizedDType(dtype)) return {{1, 32}, {7, 96}, {172, 64}, {131, 544}, {300, 224}};
  return {{1, 1}, {5, 7}, {172, 64}, {64, 172}, {131, 544}, {13, 1000}};
}

// a: [n, rows] with about half of the entries exactly zero (as after a ReLU).
std::vector<float> SparseActivations(int64_t n, int64_t rows, uint32_t seed) {
  std::vector<float> a = RandomVector(n * rows, seed);
  for (float& v : a) v = v > 0.0f ? v : 0.0f;
  return a;
}

void ExpectAccumulateMatchesReference(DType dtype, Shape shape, int64_t n, uint32_t seed) {
  SCOPED_TRACE(::testing::Message()
               << DTypeName(dtype) << " " << shape.rows << "x" << shape.cols << " n=" << n);
  const TestMatrix w = RandomMatrix(dtype, shape.rows, shape.cols, seed);
  const std::vector<float> a = SparseActivations(n, shape.rows, seed + 1);
  const std::vector<float> y0 = RandomVector(n * shape.cols, seed + 2);  // accumulated into

  std::vector<float> expected = y0;
  reference::MatMulTransposedAccumulate(w.view(), a.data(), n, expected.data());
  std::vector<float> actual = y0;
  if (n == 1) {
    MatVecTransposedAccumulate(w.view(), a.data(), actual.data());
  } else {
    MatMulTransposedAccumulate(w.view(), a.data(), n, actual.data());
  }
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t c = 0; c < shape.cols; ++c) {
      double magnitude = 0.0;
      for (int64_t r = 0; r < shape.rows; ++r) {
        magnitude += std::fabs(a[t * shape.rows + r] * w.decoded[r * shape.cols + c]);
      }
      const float y = y0[t * shape.cols + c];
      ASSERT_NEAR(actual[t * shape.cols + c], expected[t * shape.cols + c],
                  kRelativeTolerance * magnitude + std::ldexp(std::fabs(y), -23))
          << "token " << t << " column " << c;
    }
  }
}

// GatherMatMulTransposedAccumulate over `rows` (distinct, unsorted) of w: the decode path's rows
// in groups, the remainder groups and the row scan batches (1024 rows) all meet real lists.
// Tolerance as above, for up to `count` rows: (count + 2) roundings of 2^-24 of Σ|a·w|.
void ExpectGatherAccumulateMatchesReference(const TestMatrix& w, const std::vector<int32_t>& rows,
                                            int64_t n, uint32_t seed) {
  const int64_t count = static_cast<int64_t>(rows.size());
  SCOPED_TRACE(::testing::Message() << DTypeName(w.dtype) << " " << w.rows << "x" << w.cols
                                    << " count=" << count << " n=" << n);
  const std::vector<float> a = SparseActivations(n, count, seed);
  const std::vector<float> y0 = RandomVector(n * w.cols, seed + 1);
  std::vector<float> expected = y0;
  reference::GatherMatMulTransposedAccumulate(w.view(), rows.data(), count, a.data(), n,
                                              expected.data());
  std::vector<float> actual = y0;
  GatherMatMulTransposedAccumulate(w.view(), rows.data(), count, a.data(), n, actual.data());
  const double tolerance =
      std::max(kRelativeTolerance, static_cast<double>(count + 2) * std::ldexp(1.0, -24));
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t c = 0; c < w.cols; ++c) {
      double magnitude = 0.0;
      for (int64_t j = 0; j < count; ++j) {
        magnitude += std::fabs(a[t * count + j] * w.decoded[rows[j] * w.cols + c]);
      }
      const float y = y0[t * w.cols + c];
      ASSERT_NEAR(actual[t * w.cols + c], expected[t * w.cols + c],
                  tolerance * magnitude + std::ldexp(std::fabs(y), -23))
          << "token " << t << " column " << c;
    }
  }
}

class AccumulateTest : public KernelTest {};

// Odd list lengths around the row groups (1..9, 15, 17), past one scan batch (1031, 1100 rows),
// unsorted; n = 1..17 for two of them; columns not a multiple of the vector width for float rows
// and of the 16 blocks whose scales are fetched together for quantized ones.
TEST_P(AccumulateTest, GatherTransposedAccumulateMatchesReference) {
  uint32_t seed = 500;
  for (DType dtype : kAllDTypes) {
    const int64_t rows = 1100, cols = IsQuantizedDType(dtype) ? 544 : 1000;
    const TestMatrix w = RandomMatrix(dtype, rows, cols, seed++);
    for (int64_t count : {1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 17, 131, 1031, 1100}) {
      const std::vector<int32_t> list = DistinctRows(rows, count, seed++);
      const bool batches = count == 9 || count == 131;
      for (int64_t n = 1; n <= (batches ? 17 : 1); ++n) {
        ExpectGatherAccumulateMatchesReference(w, list, n, seed++);
      }
    }
  }
}

TEST_P(AccumulateTest, MatVecTransposedAccumulateMatchesReference) {
  uint32_t seed = 1;
  for (DType dtype : kAllDTypes) {
    for (Shape shape : ShapesFor(dtype)) ExpectAccumulateMatchesReference(dtype, shape, 1, seed++);
  }
}

TEST_P(AccumulateTest, MatMulTransposedAccumulateMatchesReference) {
  uint32_t seed = 100;
  for (DType dtype : kAllDTypes) {
    for (Shape shape : ShapesFor(dtype)) {
      for (int64_t n : {2, 3, 4, 5, 9}) ExpectAccumulateMatchesReference(dtype, shape, n, seed++);
    }
  }
}

// A zero activation skips its row entirely: a row of infinities behind a zero leaves y finite
// (multiplying would give NaN). Checked where the dtype can hold infinity.
TEST_P(AccumulateTest, ZeroActivationsSkipTheirRows) {
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (int64_t n : {1, 3, 6}) {
      SCOPED_TRACE(::testing::Message() << DTypeName(dtype) << " n=" << n);
      constexpr int64_t kRows = 9, kCols = 40;
      std::vector<float> values(kRows * kCols, 0.5f);
      for (int64_t c = 0; c < kCols; ++c)
        values[4 * kCols + c] = std::numeric_limits<float>::infinity();
      std::vector<uint8_t> bytes(kRows * *RowBytes(dtype, kCols));
      for (int64_t r = 0; r < kRows; ++r) {
        ASSERT_TRUE(EncodeRow(values.data() + r * kCols, kCols, dtype,
                              bytes.data() + r * *RowBytes(dtype, kCols))
                        .ok());
      }
      std::vector<float> a(n * kRows, 1.0f);
      for (int64_t t = 0; t < n; ++t) a[t * kRows + 4] = 0.0f;
      std::vector<float> y(n * kCols, 0.0f);
      MatMulTransposedAccumulate(MakeMatrixView(dtype, kRows, kCols, bytes.data()), a.data(), n,
                                 y.data());
      for (float v : y) ASSERT_EQ(v, 0.5f * (kRows - 1));
    }
  }
}

TEST_P(AccumulateTest, DecodeRowsIsExact) {
  uint32_t seed = 7;
  for (DType dtype : kAllDTypes) {
    for (Shape shape : ShapesFor(dtype)) {
      SCOPED_TRACE(::testing::Message()
                   << DTypeName(dtype) << " " << shape.rows << "x" << shape.cols);
      const TestMatrix w = RandomMatrix(dtype, shape.rows, shape.cols, seed++);
      const int64_t first = shape.rows / 3, count = shape.rows - first;
      std::vector<float> expected(count * shape.cols), actual(count * shape.cols);
      reference::DecodeRows(w.view(), first, count, expected.data());
      DecodeRows(w.view(), first, count, actual.data());
      ASSERT_EQ(actual, expected);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTargets, AccumulateTest, ::testing::ValuesIn(AllTargetsAndThreads()),
                         ParamName);

}  // namespace
}  // namespace pinfer::cpu::testing
