// q4_0x16 weights in every product that reads them (MatVec, MatMul at every batch path,
// GatherMatMul, DecodeRows) against the scalar references, on every SIMD target and thread count;
// and against the same blocks stored as plain q4_0, which must give the same products up to the
// order of the f32 sums.
//
// cols: tail only (64, 96), one full group (512), a group and a tail (544), a real model's row
// (4096). n: decode (1), the small-batch path and its token tiles (2, 3, 4, 8, 16) and the prompt
// path (17, 64). Odd row counts leave remainders of the row tiles.
#include <cmath>
#include <vector>

#include "format/quant.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/reference_kernels.h"
#include "tests/cpu/kernel_test_util.h"

namespace pinfer::cpu::testing {
namespace {

// As in dot_test.cc: f32 rounding of block products and running sums, per output element.
constexpr double kRelativeTolerance = 1e-5;

struct Case {
  int64_t rows, cols;
};
const Case kCases[] = {{7, 64}, {5, 96}, {3, 512}, {131, 512}, {9, 544}, {5, 4096}};
const int64_t kTokens[] = {1, 2, 3, 4, 8, 16, 17, 64};

// Bound on the sum's rounding: Σ |w·x| over the row.
double Magnitude(const std::vector<float>& w, const std::vector<float>& x, int64_t r, int64_t t,
                 int64_t cols) {
  double sum = 0.0;
  for (int64_t c = 0; c < cols; ++c) sum += std::fabs(w[r * cols + c] * x[t * cols + c]);
  return sum;
}

class Q4x16Test : public KernelTest {};

TEST_P(Q4x16Test, MatMulMatchesReferenceAndPlainQ4_0) {
  uint32_t seed = 900;
  for (const Case& c : kCases) {
    const TestMatrix w = RandomMatrix(DType::kQ4_0x16, c.rows, c.cols, seed++);
    // The same blocks in q4_0 order.
    TestMatrix plain = w;
    plain.dtype = DType::kQ4_0;
    ConvertQ4_0x16ToQ4_0(w.bytes.data(), plain.bytes.data(), c.rows, c.cols);
    for (int64_t n : kTokens) {
      SCOPED_TRACE(::testing::Message() << c.rows << "x" << c.cols << " n=" << n);
      const std::vector<float> x = RandomVector(n * c.cols, seed++);
      const std::vector<float> seen = ActivationsAsSeenBy(DType::kQ4_0x16, x, n, c.cols);
      std::vector<float> expected(n * c.rows), actual(n * c.rows, -1.0f), q4(n * c.rows, -2.0f);
      reference::MatMul(w.view(), seen.data(), n, expected.data());
      MatMul(w.view(), x.data(), n, actual.data());
      MatMul(plain.view(), x.data(), n, q4.data());
      for (int64_t t = 0; t < n; ++t) {
        for (int64_t r = 0; r < c.rows; ++r) {
          const double tolerance =
              kRelativeTolerance * Magnitude(w.decoded, seen, r, t, c.cols) + 1e-30;
          ASSERT_NEAR(actual[t * c.rows + r], expected[t * c.rows + r], tolerance)
              << "token " << t << " row " << r;
          ASSERT_NEAR(actual[t * c.rows + r], q4[t * c.rows + r], tolerance)
              << "token " << t << " row " << r;
        }
      }
    }
  }
}

// The neuron-sparse FFN's row lists: rows in any order, outputs in list order.
TEST_P(Q4x16Test, GatherMatMulMatchesReference) {
  uint32_t seed = 950;
  for (const Case& c : {Case{37, 544}, Case{21, 4096}}) {
    const TestMatrix w = RandomMatrix(DType::kQ4_0x16, c.rows, c.cols, seed++);
    const std::vector<int32_t> rows = {20, 3, 17, 0, 9, 11, 5, 2, 19, 8, 1};
    const int64_t count = static_cast<int64_t>(rows.size());
    for (int64_t n : {1, 3, 16, 17}) {
      SCOPED_TRACE(::testing::Message() << c.rows << "x" << c.cols << " n=" << n);
      const std::vector<float> x = RandomVector(n * c.cols, seed++);
      const std::vector<float> seen = ActivationsAsSeenBy(DType::kQ4_0x16, x, n, c.cols);
      std::vector<float> expected(n * count), actual(n * count, -1.0f);
      reference::GatherMatMul(w.view(), rows.data(), count, seen.data(), n, expected.data());
      GatherMatMul(w.view(), rows.data(), count, x.data(), n, actual.data());
      for (int64_t t = 0; t < n; ++t) {
        for (int64_t j = 0; j < count; ++j) {
          ASSERT_NEAR(actual[t * count + j], expected[t * count + j],
                      kRelativeTolerance * Magnitude(w.decoded, seen, rows[j], t, c.cols) + 1e-30)
              << "token " << t << " entry " << j;
        }
      }
    }
  }
}

// The embedding lookup of a tied classifier: exact.
TEST_P(Q4x16Test, DecodeRowsIsExact) {
  uint32_t seed = 990;
  for (const Case& c : kCases) {
    const TestMatrix w = RandomMatrix(DType::kQ4_0x16, c.rows, c.cols, seed++);
    std::vector<float> actual(c.rows * c.cols);
    DecodeRows(w.view(), 0, c.rows, actual.data());
    ASSERT_EQ(actual, w.decoded) << c.rows << "x" << c.cols;
  }
}

INSTANTIATE_TEST_SUITE_P(AllTargets, Q4x16Test, ::testing::ValuesIn(AllTargetsAndThreads()),
                         ParamName);

}  // namespace
}  // namespace pinfer::cpu::testing
