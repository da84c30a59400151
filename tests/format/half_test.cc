#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "format/half.h"
#include "gtest/gtest.h"

namespace pinfer {
namespace {

// Every half value converts to f32 and back to itself (NaNs stay NaN).
TEST(HalfTest, F16RoundTripsEveryValue) {
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    const float f = F16ToF32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(F16ToF32(F32ToF16(f)))) << h;
      continue;
    }
    EXPECT_EQ(F32ToF16(f), h) << "half bits " << h;
  }
}

TEST(HalfTest, F16KnownValues) {
  EXPECT_EQ(F32ToF16(1.0f), 0x3C00);
  EXPECT_EQ(F32ToF16(-2.0f), 0xC000);
  EXPECT_EQ(F32ToF16(65504.0f), 0x7BFF);
  EXPECT_EQ(F32ToF16(65520.0f), 0x7C00);  // ties to even: overflows to inf
  EXPECT_EQ(F32ToF16(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(F32ToF16(5.9604645e-08f), 0x0001);  // smallest subnormal
  EXPECT_EQ(F32ToF16(2.9802322e-08f), 0x0000);  // half of it ties to even zero
  EXPECT_FLOAT_EQ(F16ToF32(0x3555), 0.33325195f);
  // 1 + 2^-11 is exactly between 1 and the next half: ties to even (1.0).
  EXPECT_EQ(F32ToF16(1.0f + 1.0f / 2048), 0x3C00);
  EXPECT_EQ(F32ToF16(1.0f + 3.0f / 2048), 0x3C02);
}

// Rounding matches nearest: the chosen half is never farther than the other neighbour.
TEST(HalfTest, F16RoundsToNearest) {
  uint32_t state = 12345;
  for (int i = 0; i < 200000; ++i) {
    state = state * 1664525u + 1013904223u;
    const float f = std::bit_cast<float>((state & 0x8FFFFFFFu) | 0x30000000u) ;
    if (!std::isfinite(f) || std::fabs(f) > 60000.0f) continue;
    const uint16_t h = F32ToF16(f);
    const double chosen = F16ToF32(h);
    const double up = F16ToF32(static_cast<uint16_t>(h + 1));
    const double down = F16ToF32(static_cast<uint16_t>(h - 1));
    const double err = std::fabs(chosen - f);
    if ((h & 0x7FFF) != 0x7BFF) EXPECT_LE(err, std::fabs(up - f)) << f;
    if ((h & 0x7FFF) != 0) EXPECT_LE(err, std::fabs(down - f)) << f;
  }
}

TEST(HalfTest, BF16RoundsToNearestEven) {
  EXPECT_EQ(F32ToBF16(1.0f), 0x3F80);
  EXPECT_EQ(BF16ToF32(0x3F80), 1.0f);
  // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1 + 2^-7: ties to even (1).
  EXPECT_EQ(F32ToBF16(1.0f + 1.0f / 256), 0x3F80);
  EXPECT_EQ(F32ToBF16(1.0f + 3.0f / 256), 0x3F82);
  EXPECT_TRUE(std::isnan(BF16ToF32(F32ToBF16(std::numeric_limits<float>::quiet_NaN()))));
  for (uint32_t b = 0; b <= 0xFFFF; ++b) {
    const float f = BF16ToF32(static_cast<uint16_t>(b));
    if (!std::isnan(f)) EXPECT_EQ(F32ToBF16(f), b);
  }
}

}  // namespace
}  // namespace pinfer
