// RopeShift, the re-rotation of stored keys by a context shift: a key rotated at position p and
// then shifted by -d equals the key rotated at p - d (the definition), for the scalar reference and
// for the SIMD kernel on every target and thread count; and the kernel against the reference.
// With and without a model's RoPE scaling (rope_frequencies.h: per-pair divisors of the
// frequencies, Llama 3's rope_scaling): RoPE with divisor k on every pair at position p is plain
// RoPE at p / k, and the SIMD RopeInterleaved with divisors matches the reference.
// The runtime has one RoPE layout, interleaved pairs (runtime/model/model_config.h: pi-convert
// permutes half-split HF checkpoints into it), so that is the layout covered.
#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/cpu/kernels.h"
#include "runtime/cpu/reference_kernels.h"
#include "tests/cpu/kernel_test_util.h"

namespace pinfer::cpu::testing {
namespace {

class RopeShiftTest : public KernelTest {};

using ShiftFn = void (*)(float*, int64_t, int64_t, int64_t, int64_t, int64_t,
                        const RopeFrequencies&);
using RopeFn = void (*)(float*, int64_t, int64_t, int64_t, const RopeFrequencies&);

// RoPE of base `theta` with divisors from 1 (the first pair) to 8 (the last), as Llama 3's
// scaling leaves the high frequencies and divides the low ones by its factor; uneven on purpose.
RopeFrequencies Scaled(double theta, int64_t head_dim) {
  RopeFrequencies rope(theta);
  rope.n_factors = static_cast<int32_t>(head_dim / 2);
  const float last = static_cast<float>(std::max(1, rope.n_factors - 1));
  for (int32_t i = 0; i < rope.n_factors; ++i) {
    rope.factors[i] = 1.0f + 7.0f * static_cast<float>(i * i) / (last * last);
  }
  return rope;
}

// Each pair is two roundings of f32 rotations away from the key rotated directly (the angles are
// f64 in both; the tables f32): a few ulps of |x0| + |x1|.
void ExpectShiftMovesKeys(ShiftFn shift, RopeFn rope) {
  uint32_t seed = 7;
  constexpr int64_t kHeads = 3;
  for (int64_t head_dim : {2, 8, 12, 64, 128}) {
    for (int64_t pos : {1, 40, 4095, 70000}) {
      for (int64_t distance : {int64_t{1}, int64_t{31}, pos}) {
        for (const RopeFrequencies& frequencies :
             {RopeFrequencies(10000.0), RopeFrequencies(1000000.0), Scaled(500000.0, head_dim)}) {
          SCOPED_TRACE(::testing::Message()
                       << "head_dim " << head_dim << " pos " << pos << " by " << -distance
                       << " theta " << frequencies.theta << " factors " << frequencies.n_factors);
          const std::vector<float> key = RandomVector(kHeads * head_dim, seed++);
          std::vector<float> shifted = key, direct = key;
          rope(shifted.data(), kHeads, head_dim, pos, frequencies);
          shift(shifted.data(), 1, kHeads * head_dim, kHeads, head_dim, -distance, frequencies);
          rope(direct.data(), kHeads, head_dim, pos - distance, frequencies);
          for (int64_t i = 0; i < kHeads * head_dim; i += 2) {
            const double bound = 1e-6 * (std::fabs(key[i]) + std::fabs(key[i + 1]));
            ASSERT_NEAR(shifted[i], direct[i], bound) << i;
            ASSERT_NEAR(shifted[i + 1], direct[i + 1], bound) << i;
          }
        }
      }
    }
  }
}

TEST(RopeShiftReferenceTest, ShiftedKeyEqualsTheKeyAtTheNewPosition) {
  ExpectShiftMovesKeys(&reference::RopeShift, &reference::RopeInterleaved);
}

TEST_P(RopeShiftTest, ShiftedKeyEqualsTheKeyAtTheNewPosition) {
  ExpectShiftMovesKeys(&RopeShift, &RopeInterleaved);
}

// Rows `row_stride` apart with a gap between them that must stay as it is; enough rows in one
// case (n_rows · row floats > 2^16) for the threaded split.
TEST_P(RopeShiftTest, MatchesTheReferenceAndLeavesTheGapsAlone) {
  uint32_t seed = 300;
  struct Case {
    int64_t n_heads, head_dim, n_rows;
  };
  for (const Case c :
       {Case{1, 2, 1}, Case{8, 8, 70}, Case{4, 12, 5}, Case{2, 64, 600}, Case{3, 128, 9}}) {
    for (int64_t delta : {-1, -33, -5000, 17}) {
      SCOPED_TRACE(::testing::Message()
                   << c.n_heads << "x" << c.head_dim << " rows " << c.n_rows << " by " << delta);
      const int64_t row = c.n_heads * c.head_dim, stride = row + 5;
      const std::vector<float> rows = RandomVector(c.n_rows * stride, seed++, 2.0f);
      std::vector<float> expected = rows, actual = rows;
      const RopeFrequencies frequencies =
          delta == -33 ? Scaled(500000.0, c.head_dim) : RopeFrequencies(10000.0);
      reference::RopeShift(expected.data(), c.n_rows, stride, c.n_heads, c.head_dim, delta,
                           frequencies);
      RopeShift(actual.data(), c.n_rows, stride, c.n_heads, c.head_dim, delta, frequencies);
      for (int64_t r = 0; r < c.n_rows; ++r) {
        const float* in = rows.data() + r * stride;
        for (int64_t i = 0; i < row; i += 2) {
          const int64_t at = r * stride + i;
          const double bound = 4e-7 * (std::fabs(in[i]) + std::fabs(in[i + 1]));
          ASSERT_NEAR(actual[at], expected[at], bound) << r << " " << i;
          ASSERT_NEAR(actual[at + 1], expected[at + 1], bound) << r << " " << i;
        }
        for (int64_t i = row; i < stride; ++i) ASSERT_EQ(actual[r * stride + i], in[i]);
      }
      // A real rotation: the keys moved.
      ASSERT_NE(actual, rows);
    }
  }
}

// Divisor k on every pair (linear scaling by k) at position p is plain RoPE at p / k: the same
// angles, computed another way. For the reference and the kernel.
void ExpectUniformDivisorIsAPositionScale(RopeFn rope) {
  uint32_t seed = 500;
  constexpr int64_t kHeads = 2;
  for (int64_t head_dim : {2, 16, 128}) {
    for (float k : {2.0f, 4.0f, 8.0f}) {
      for (int64_t pos : {8, 64, 4096}) {
        SCOPED_TRACE(::testing::Message() << head_dim << " divisor " << k << " at " << pos);
        RopeFrequencies scaled(500000.0);
        scaled.n_factors = static_cast<int32_t>(head_dim / 2);
        for (int32_t i = 0; i < scaled.n_factors; ++i) scaled.factors[i] = k;
        const std::vector<float> v = RandomVector(kHeads * head_dim, seed++);
        std::vector<float> by_factor = v, by_position = v;
        rope(by_factor.data(), kHeads, head_dim, pos, scaled);
        rope(by_position.data(), kHeads, head_dim, pos / static_cast<int64_t>(k),
             RopeFrequencies(500000.0));
        for (int64_t i = 0; i < kHeads * head_dim; ++i) {
          const double bound = 1e-6 * (std::fabs(v[i & ~1]) + std::fabs(v[i | 1]));
          ASSERT_NEAR(by_factor[i], by_position[i], bound) << i;
        }
        // And the divisors matter: unscaled RoPE at p differs (p >= 8: the first pair turns by p
        // radians, not p / k).
        std::vector<float> plain = v;
        rope(plain.data(), kHeads, head_dim, pos, RopeFrequencies(500000.0));
        ASSERT_NE(plain, by_factor);
      }
    }
  }
}

TEST(RopeShiftReferenceTest, UniformDivisorIsAPositionScale) {
  ExpectUniformDivisorIsAPositionScale(&reference::RopeInterleaved);
}

TEST_P(RopeShiftTest, UniformDivisorIsAPositionScale) {
  ExpectUniformDivisorIsAPositionScale(&RopeInterleaved);
}

// The kernel's scaled RoPE against the reference's (the tolerance of elementwise_test's plain one).
TEST_P(RopeShiftTest, ScaledRopeInterleavedMatchesTheReference) {
  uint32_t seed = 600;
  constexpr int64_t kHeads = 3;
  for (int64_t head_dim : {2, 8, 64, 128, 512}) {
    for (int64_t pos : {0, 1, 17, 4095, 100000}) {
      SCOPED_TRACE(::testing::Message() << head_dim << " at " << pos);
      const RopeFrequencies frequencies = Scaled(500000.0, head_dim);
      const std::vector<float> v = RandomVector(kHeads * head_dim, seed++);
      std::vector<float> expected = v, actual = v;
      reference::RopeInterleaved(expected.data(), kHeads, head_dim, pos, frequencies);
      RopeInterleaved(actual.data(), kHeads, head_dim, pos, frequencies);
      for (int64_t i = 0; i < kHeads * head_dim; i += 2) {
        const double bound = 4e-7 * (std::fabs(v[i]) + std::fabs(v[i + 1]));
        ASSERT_NEAR(actual[i], expected[i], bound) << i;
        ASSERT_NEAR(actual[i + 1], expected[i + 1], bound) << i;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTargets, RopeShiftTest, ::testing::ValuesIn(AllTargetsAndThreads()),
                         ParamName);

}  // namespace
}  // namespace pinfer::cpu::testing
