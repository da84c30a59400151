#include <cmath>
#include <random>
#include <vector>

#include "format/dtype.h"
#include "format/half.h"
#include "format/quant.h"
#include "gtest/gtest.h"

namespace pinfer {
namespace {

std::vector<float> RandomRow(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng);
  return x;
}

TEST(DTypeTest, SizesAndNames) {
  EXPECT_EQ(*RowBytes(DType::kQ8_0, 64), 68u);
  EXPECT_EQ(*RowBytes(DType::kQ4_0, 64), 36u);
  EXPECT_EQ(*RowBytes(DType::kF16, 3), 6u);
  EXPECT_FALSE(RowBytes(DType::kQ4_0, 48).ok());
  const uint64_t shape[] = {172, 64};
  EXPECT_EQ(*TensorBytes(DType::kF32, shape), 172u * 64 * 4);
  const uint64_t huge[] = {UINT64_MAX / 2, 64};
  EXPECT_FALSE(TensorBytes(DType::kF32, huge).ok());
  for (std::string_view name : {"f32", "f16", "bf16", "q8_0", "q4_0", "i32", "u8"}) {
    EXPECT_EQ(DTypeName(*ParseDType(name)), name);
  }
  EXPECT_FALSE(ParseDType("q5_k").ok());
  EXPECT_FALSE(IsKnownDType(7));
}

// A block worked by hand with ggml's formulas.
TEST(QuantTest, Q8_0KnownBlock) {
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[i] = (i - 16) * 0.5f;  // -8 .. 7.5, amax 8
  BlockQ8_0 block;
  QuantizeRowQ8_0(x.data(), &block, 32);
  EXPECT_EQ(block.d, F32ToF16(8.0f / 127.0f));
  EXPECT_EQ(block.qs[0], -127);                                               // -8 / (8/127)
  EXPECT_EQ(block.qs[17], static_cast<int8_t>(std::roundf(0.5f * 127 / 8)));  // 7.9375 -> 8
  EXPECT_EQ(block.qs[16], 0);
}

TEST(QuantTest, Q4_0KnownBlock) {
  std::vector<float> x(32, 0.0f);
  x[0] = -4.0f;   // largest magnitude, negative: d = -4 / -8 = 0.5
  x[1] = 1.0f;    // q = 1/0.5 + 8 = 10
  x[16] = 3.4f;   // 6.8 + 8.5 = 15.3 -> 15, clamped at 15
  x[17] = -0.2f;  // -0.4 + 8.5 = 8.1 -> 8
  BlockQ4_0 block;
  QuantizeRowQ4_0(x.data(), &block, 32);
  EXPECT_EQ(F16ToF32(block.d), 0.5f);
  EXPECT_EQ(block.qs[0], 0 | (15 << 4));
  EXPECT_EQ(block.qs[1], 10 | (8 << 4));
  EXPECT_EQ(block.qs[2], 8 | (8 << 4));
  float y[32];
  DequantizeRowQ4_0(&block, y, 32);
  EXPECT_EQ(y[0], -4.0f);
  EXPECT_EQ(y[1], 1.0f);
  EXPECT_EQ(y[16], 3.5f);
  EXPECT_EQ(y[17], 0.0f);
}

// Round-to-nearest quantization: each value is within half a step of its reconstruction
// (plus the f16 rounding of the scale).
TEST(QuantTest, Q8_0ErrorBound) {
  const size_t n = 4096;
  std::vector<float> x = RandomRow(n, 1, 3.0f), y(n);
  std::vector<BlockQ8_0> blocks(n / 32);
  QuantizeRowQ8_0(x.data(), blocks.data(), n);
  DequantizeRowQ8_0(blocks.data(), y.data(), n);
  for (size_t b = 0; b < n / 32; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    const float step = amax / 127.0f;
    for (int j = 0; j < 32; ++j) {
      // Half a step, plus 127 steps' worth of the f16 scale's relative error (2^-11).
      EXPECT_LE(std::fabs(x[b * 32 + j] - y[b * 32 + j]), 0.5f * step + amax * 0.0005f);
    }
  }
}

// The error-minimising q4_0 scales: the same block format, less squared error than ggml's rule on
// every block of random data (ggml's choice is among the candidates), within one step per value.
TEST(QuantTest, Q4_0MinErrorBeatsGgmlScales) {
  const size_t n = 4096;
  const std::vector<float> x = RandomRow(n, 3);
  std::vector<BlockQ4_0> ggml(n / 32), best(n / 32);
  QuantizeRowQ4_0(x.data(), ggml.data(), n);
  QuantizeRowQ4_0MinError(x.data(), best.data(), n);
  std::vector<float> yg(n), yb(n);
  DequantizeRowQ4_0(ggml.data(), yg.data(), n);
  DequantizeRowQ4_0(best.data(), yb.data(), n);
  double total_ggml = 0, total_best = 0;
  for (size_t b = 0; b < n / 32; ++b) {
    double eg = 0, eb = 0;
    const float step = std::fabs(F16ToF32(best[b].d));
    for (size_t j = b * 32; j < b * 32 + 32; ++j) {
      eg += (x[j] - yg[j]) * (x[j] - yg[j]);
      eb += (x[j] - yb[j]) * (x[j] - yb[j]);
      EXPECT_LE(std::fabs(x[j] - yb[j]), step + 1e-6f) << j;  // rounding, or the top code (7)
    }
    EXPECT_LE(eb, eg * 1.001 + 1e-12) << "block " << b;
    total_ggml += eg;
    total_best += eb;
  }
  EXPECT_LT(total_best, 0.97 * total_ggml);  // measured 0.94 on this uniform data
  // An all-zero block stays exactly zero.
  const std::vector<float> zeros(32, 0.0f);
  BlockQ4_0 z;
  QuantizeRowQ4_0MinError(zeros.data(), &z, 32);
  float out[32];
  DequantizeRowQ4_0(&z, out, 32);
  for (float v : out) EXPECT_EQ(v, 0.0f);
}

TEST(QuantTest, Q4_0ErrorBound) {
  const size_t n = 4096;
  std::vector<float> x = RandomRow(n, 2), y(n);
  std::vector<BlockQ4_0> blocks(n / 32);
  QuantizeRowQ4_0(x.data(), blocks.data(), n);
  DequantizeRowQ4_0(blocks.data(), y.data(), n);
  double sum_sq = 0;
  for (size_t b = 0; b < n / 32; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    const float step = amax / 8.0f;
    for (int j = 0; j < 32; ++j) {
      const float err = std::fabs(x[b * 32 + j] - y[b * 32 + j]);
      // Within half a step, except the top clamp (q=15) which can lose up to one step.
      EXPECT_LE(err, step * 1.0f + amax * 0.001f);
      sum_sq += err * err;
    }
  }
  // RMS error of 4-bit round-to-nearest on a Gaussian: well under a tenth of its unit scale.
  EXPECT_LT(std::sqrt(sum_sq / n), 0.1);
}

TEST(QuantTest, EncodeDecodeEveryFloatDType) {
  const size_t n = 256;
  std::vector<float> x = RandomRow(n, 3), y(n);
  const struct {
    DType dtype;
    float tolerance;
  } cases[] = {{DType::kF32, 0.0f},
               {DType::kF16, 2e-3f},
               {DType::kBF16, 1.6e-2f},
               {DType::kQ8_0, 0.03f},
               {DType::kQ4_0, 0.5f}};
  for (const auto& c : cases) {
    std::vector<uint8_t> bytes(*RowBytes(c.dtype, n));
    ASSERT_TRUE(EncodeRow(x.data(), n, c.dtype, bytes.data()).ok());
    ASSERT_TRUE(DecodeRow(bytes.data(), n, c.dtype, y.data()).ok());
    for (size_t i = 0; i < n; ++i) {
      EXPECT_NEAR(x[i], y[i], c.tolerance * std::max(1.0f, std::fabs(x[i]))) << DTypeName(c.dtype);
    }
  }
  std::vector<uint8_t> bytes(64);
  EXPECT_FALSE(EncodeRow(x.data(), 16, DType::kI32, bytes.data()).ok());
  EXPECT_FALSE(EncodeRow(x.data(), 48, DType::kQ8_0, bytes.data()).ok());
}

}  // namespace
}  // namespace pinfer
