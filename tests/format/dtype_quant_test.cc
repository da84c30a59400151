#include <cmath>
#include <cstring>
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
  for (std::string_view name : {"f32", "f16", "bf16", "q8_0", "q4_0", "i32", "u8", "q4_0x16"}) {
    EXPECT_EQ(DTypeName(*ParseDType(name)), name);
  }
  EXPECT_FALSE(ParseDType("q5_k").ok());
  // The file format's numbers: q4_0x16 took the next free one.
  EXPECT_EQ(static_cast<uint32_t>(DType::kQ4_0x16), 7u);
  EXPECT_TRUE(IsKnownDType(7));
  EXPECT_FALSE(IsKnownDType(8));
  // The same bytes as q4_0 for any row length that q4_0 allows.
  EXPECT_EQ(*RowBytes(DType::kQ4_0x16, 544), *RowBytes(DType::kQ4_0, 544));
  EXPECT_FALSE(RowBytes(DType::kQ4_0x16, 48).ok());
  // A storage layout, not a dtype to ask for.
  EXPECT_FALSE(ParseWeightDType("q4_0x16").ok());
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

// Row lengths with no full group (64), one group and a tail (544), several groups (1024).
TEST(Q4x16Test, RoundTripIsIdentityAndBlocksMatch) {
  for (size_t cols : {64u, 96u, 512u, 544u, 1024u}) {
    const size_t rows = 3, blocks = cols / 32;
    std::vector<float> x = RandomRow(rows * cols, 11 + static_cast<uint32_t>(cols));
    std::vector<BlockQ4_0> plain(rows * blocks), back(rows * blocks);
    for (size_t r = 0; r < rows; ++r) QuantizeRowQ4_0(&x[r * cols], &plain[r * blocks], cols);
    std::vector<uint8_t> x16(rows * blocks * 18);
    ConvertQ4_0ToQ4_0x16(plain.data(), x16.data(), rows, cols);
    ConvertQ4_0x16ToQ4_0(x16.data(), back.data(), rows, cols);
    ASSERT_EQ(std::memcmp(plain.data(), back.data(), x16.size()), 0) << cols;
    // A full group really moves its bytes; a tail stays where it is.
    const bool moved = std::memcmp(plain.data(), x16.data(), x16.size()) != 0;
    EXPECT_EQ(moved, cols >= 512) << cols;
    for (size_t r = 0; r < rows; ++r) {
      for (size_t b = 0; b < blocks; ++b) {
        const BlockQ4_0 block = Q4_0x16Block(x16.data() + r * blocks * 18, b, blocks);
        EXPECT_EQ(std::memcmp(&block, &plain[r * blocks + b], 18), 0) << cols << " " << b;
      }
    }
    std::vector<float> y_plain(cols), y_x16(cols);
    for (size_t r = 0; r < rows; ++r) {
      ASSERT_TRUE(DecodeRow(&plain[r * blocks], cols, DType::kQ4_0, y_plain.data()).ok());
      ASSERT_TRUE(
          DecodeRow(x16.data() + r * blocks * 18, cols, DType::kQ4_0x16, y_x16.data()).ok());
      EXPECT_EQ(y_plain, y_x16);
    }
  }
}

// The layout byte by byte, as format/README.md states it: group scales first, then lane j of
// 64-byte vector g holds bytes qs[4g..4g+3] of block j.
TEST(Q4x16Test, LayoutAsDocumented) {
  const size_t cols = 544, blocks = 17;
  std::vector<BlockQ4_0> plain(blocks);
  for (size_t b = 0; b < blocks; ++b) {
    plain[b].d = static_cast<uint16_t>(0x3c00 + b);
    for (size_t i = 0; i < 16; ++i) plain[b].qs[i] = static_cast<uint8_t>(b * 16 + i);
  }
  std::vector<uint8_t> x16(blocks * 18);
  ConvertQ4_0ToQ4_0x16(plain.data(), x16.data(), 1, cols);
  uint16_t d5;
  std::memcpy(&d5, &x16[10], 2);
  EXPECT_EQ(d5, 0x3c05);
  EXPECT_EQ(x16[32 + 64 * 2 + 4 * 5 + 1], 5 * 16 + 9);  // block 5, qs[9]
  EXPECT_EQ(x16[32 + 64 * 3 + 4 * 15 + 3], 15 * 16 + 15);
  EXPECT_EQ(std::memcmp(&x16[288], &plain[16], 18), 0);  // the tail block, unchanged
  EXPECT_EQ(Q4x16NibbleOffset(16, 3, blocks), 288u + 2 + 3);
}

TEST(Q4x16Test, EncodeIsReorderedQ4_0) {
  const size_t n = 1056;  // two groups and a tail of 1 block
  std::vector<float> x = RandomRow(n, 5);
  for (Q4Scales scales : {Q4Scales::kGgml, Q4Scales::kMinError}) {
    std::vector<uint8_t> q4(*RowBytes(DType::kQ4_0, n)), x16(q4.size()), expected(q4.size());
    ASSERT_TRUE(EncodeRow(x.data(), n, DType::kQ4_0, q4.data(), scales).ok());
    ASSERT_TRUE(EncodeRow(x.data(), n, DType::kQ4_0x16, x16.data(), scales).ok());
    ConvertQ4_0ToQ4_0x16(q4.data(), expected.data(), 1, n);
    EXPECT_EQ(x16, expected);
  }
}

}  // namespace
}  // namespace pinfer
