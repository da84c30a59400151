// MatVec / MatMul against reference::MatMul, for every weight dtype, on every SIMD target and
// thread count.
//
// Tolerance: the reference multiplies exactly the values the kernel multiplies (decoded weights,
// and for q8_0/q4_0 weights the activations after their q8_0 round trip, which the kernel performs
// internally) and sums in f64; for quantized weights the kernel's block sums are exact integers.
// What remains is f32 rounding of the per-block scale products and of the running sums: with
// vector accumulators a sum of `cols` terms sees about cols/16 + 16 roundings, each bounded by
// 2^-24 of the running magnitude, itself bounded by Σ|w·x|. For the sizes below (cols <= 1088)
// that is < 1e-5 · Σ|w·x|; the bound is checked per output element.
#include <cmath>
#include <vector>

#include "format/quant.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/reference_kernels.h"
#include "tests/cpu/kernel_test_util.h"

namespace pinfer::cpu::testing {
namespace {

constexpr double kRelativeTolerance = 1e-5;

struct Shape {
  int64_t rows, cols;
};

std::vector<Shape> ShapesFor(DType dtype) {
  if (IsQuantizedDType(dtype)) {
    // cols: 1 block, an odd number of blocks (the 512-bit paths take two at a time), many blocks;
    // 131 x 544 is above the size at which the kernels start using threads.
    return {{1, 32}, {5, 96}, {37, 64}, {131, 544}, {9, 1088}};
  }
  // Rows that are not a multiple of the vector length exercise the scalar tails.
  return {{1, 1}, {3, 7}, {17, 172}, {64, 64}, {131, 544}, {6, 1000}};
}

const DType kAllDTypes[] = {DType::kF32,  DType::kF16,  DType::kBF16,
                            DType::kQ8_0, DType::kQ4_0, DType::kQ4_0x16};

void ExpectMatMulMatchesReference(DType dtype, Shape shape, int64_t n, uint32_t seed) {
  SCOPED_TRACE(::testing::Message()
               << DTypeName(dtype) << " " << shape.rows << "x" << shape.cols << " n=" << n);
  const TestMatrix w = RandomMatrix(dtype, shape.rows, shape.cols, seed);
  const std::vector<float> x = RandomVector(n * shape.cols, seed + 1);
  const std::vector<float> seen = ActivationsAsSeenBy(dtype, x, n, shape.cols);

  std::vector<float> expected(n * shape.rows);
  reference::MatMul(w.view(), seen.data(), n, expected.data());
  std::vector<float> actual(n * shape.rows, -1.0f);
  if (n == 1) {
    MatVec(w.view(), x.data(), actual.data());
  } else {
    MatMul(w.view(), x.data(), n, actual.data());
  }
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t r = 0; r < shape.rows; ++r) {
      double magnitude = 0.0;
      for (int64_t c = 0; c < shape.cols; ++c) {
        magnitude += std::fabs(w.decoded[r * shape.cols + c] * seen[t * shape.cols + c]);
      }
      ASSERT_NEAR(actual[t * shape.rows + r], expected[t * shape.rows + r],
                  kRelativeTolerance * magnitude + 1e-30)
          << "token " << t << " row " << r;
    }
  }
}

class DotTest : public KernelTest {};

TEST_P(DotTest, MatVecMatchesReference) {
  uint32_t seed = 1;
  for (DType dtype : kAllDTypes) {
    for (Shape shape : ShapesFor(dtype)) ExpectMatMulMatchesReference(dtype, shape, 1, seed++);
  }
}

TEST_P(DotTest, MatMulMatchesReference) {
  uint32_t seed = 100;
  for (DType dtype : kAllDTypes) {
    for (Shape shape : ShapesFor(dtype)) {
      // Token counts around the token tile (2, 4 or 6 depending on the target and dtype) and
      // above it, up to the largest small batch (16, which streams each row tile once).
      for (int64_t n : {2, 3, 4, 5, 7, 9, 16}) {
        ExpectMatMulMatchesReference(dtype, shape, n, seed++);
      }
    }
  }
}

// Prompt-sized products (more than the 16 tokens of a small batch) cross the column-chunk and
// row-block boundaries of the cache blocking.
TEST_P(DotTest, MatMulAcrossCacheBlocks) {
  uint32_t seed = 500;
  for (DType dtype : kAllDTypes) {
    for (int64_t n : {6, 17, 23}) ExpectMatMulMatchesReference(dtype, {70, 2336}, n, seed++);
  }
}

// The activations reach the kernel quantized exactly as pinfer::QuantizeRowQ8_0 does, including
// ties (x·(1/d) exactly k + 0.5 rounds away from zero, where SIMD rounding would go to even).
TEST_P(DotTest, ActivationQuantizationRoundsHalfAwayFromZero) {
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;  // d = 1, so every other value is its own quantized image
  x[1] = 2.5f;    // -> 3 (ties-to-even would give 2)
  x[2] = -4.5f;   // -> -5
  x[3] = 0.5f;    // -> 1
  std::vector<float> weights(32, 0.0f);
  for (int i = 1; i <= 3; ++i) weights[i] = static_cast<float>(1 << (2 * i));  // 4, 16, 64
  TestMatrix w;
  w.dtype = DType::kQ8_0;
  w.rows = 1;
  w.cols = 32;
  w.bytes.resize(34);
  ASSERT_TRUE(EncodeRow(weights.data(), 32, DType::kQ8_0, w.bytes.data()).ok());
  std::vector<float> decoded(32);
  ASSERT_TRUE(DecodeRow(w.bytes.data(), 32, DType::kQ8_0, decoded.data()).ok());
  float y = 0.0f;
  MatVec(w.view(), x.data(), &y);
  EXPECT_FLOAT_EQ(y, 3 * decoded[1] - 5 * decoded[2] + 1 * decoded[3]);
}

INSTANTIATE_TEST_SUITE_P(AllTargets, DotTest, ::testing::ValuesIn(AllTargetsAndThreads()),
                         ParamName);

}  // namespace
}  // namespace pinfer::cpu::testing
