// RopeShift, the re-rotation of stored keys by a context shift: a key rotated at position p and
// then shifted by -d equals the key rotated at p - d (the definition), for the scalar reference and
// for the SIMD kernel on every target and thread count; and the kernel against the reference.
// The runtime has one RoPE layout, interleaved pairs (runtime/model/model_config.h: pi-convert
// permutes half-split HF checkpoints into it), so that is the layout covered.
#include <cmath>
#include <vector>

#include "runtime/cpu/kernels.h"
#include "runtime/cpu/reference_kernels.h"
#include "tests/cpu/kernel_test_util.h"

namespace pinfer::cpu::testing {
namespace {

class RopeShiftTest : public KernelTest {};

using ShiftFn = void (*)(float*, int64_t, int64_t, int64_t, int64_t, int64_t, double);
using RopeFn = void (*)(float*, int64_t, int64_t, int64_t, double);

// Each pair is two roundings of f32 rotations away from the key rotated directly (the angles are
// f64 in both; the tables f32): a few ulps of |x0| + |x1|.
void ExpectShiftMovesKeys(ShiftFn shift, RopeFn rope) {
  uint32_t seed = 7;
  constexpr int64_t kHeads = 3;
  for (int64_t head_dim : {2, 8, 12, 64, 128}) {
    for (int64_t pos : {1, 40, 4095, 70000}) {
      for (int64_t distance : {int64_t{1}, int64_t{31}, pos}) {
        for (double theta : {10000.0, 1000000.0}) {
          SCOPED_TRACE(::testing::Message() << "head_dim " << head_dim << " pos " << pos << " by "
                                            << -distance << " theta " << theta);
          const std::vector<float> key = RandomVector(kHeads * head_dim, seed++);
          std::vector<float> shifted = key, direct = key;
          rope(shifted.data(), kHeads, head_dim, pos, theta);
          shift(shifted.data(), 1, kHeads * head_dim, kHeads, head_dim, -distance, theta);
          rope(direct.data(), kHeads, head_dim, pos - distance, theta);
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
      reference::RopeShift(expected.data(), c.n_rows, stride, c.n_heads, c.head_dim, delta,
                           10000.0);
      RopeShift(actual.data(), c.n_rows, stride, c.n_heads, c.head_dim, delta, 10000.0);
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

INSTANTIATE_TEST_SUITE_P(AllTargets, RopeShiftTest, ::testing::ValuesIn(AllTargetsAndThreads()),
                         ParamName);

}  // namespace
}  // namespace pinfer::cpu::testing
