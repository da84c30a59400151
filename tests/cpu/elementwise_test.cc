// RmsNorm, RopeInterleaved, Softmax, FfnCombine, ShiftedRelu and Add against the references, on
// every SIMD target, for lengths with and without a partial last vector.
#include <cmath>
#include <limits>
#include <vector>

#include "runtime/cpu/kernels.h"
#include "runtime/cpu/reference_kernels.h"
#include "tests/cpu/kernel_test_util.h"

namespace pinfer::cpu::testing {
namespace {

const int64_t kLengths[] = {1, 3, 8, 15, 16, 17, 33, 64, 100, 4096};

class ElementwiseTest : public KernelTest {};

// The kernel sums the squares in f32 vectors over chunks of 16 vectors and adds the chunk totals
// in f64 (the reference sums in f64): < (16 + 16)·2^-24 < 2e-6 relative error in the mean, halved
// by the square root, plus one ulp if the f32 scale rounds the other way; the output products are
// the same f32 ones. Hence 4e-6 relative.
TEST_P(ElementwiseTest, RmsNorm) {
  uint32_t seed = 1;
  for (int64_t n : kLengths) {
    SCOPED_TRACE(n);
    const std::vector<float> x = RandomVector(n, seed++, 3.0f);
    const std::vector<float> weight = RandomVector(n, seed++);
    std::vector<float> expected(n), actual(n);
    reference::RmsNorm(x.data(), weight.data(), n, 1e-5f, expected.data());
    RmsNorm(x.data(), weight.data(), n, 1e-5f, actual.data());
    for (int64_t i = 0; i < n; ++i)
      ASSERT_NEAR(actual[i], expected[i], 4e-6 * std::fabs(expected[i]));
    // In place (out aliases x).
    std::vector<float> in_place = x;
    RmsNorm(in_place.data(), weight.data(), n, 1e-5f, in_place.data());
    ASSERT_EQ(in_place, actual);
  }
}

// The angles and their sine/cosine are computed in f64 as in the reference and rounded to f32;
// the rotation is then f32 (two products and a sum: a few ulps of |x0| + |x1|).
TEST_P(ElementwiseTest, RopeInterleaved) {
  uint32_t seed = 50;
  for (int64_t head_dim : {2, 8, 64, 128, 600}) {
    for (int64_t pos : {0, 1, 17, 4095, 100000}) {
      for (double theta : {10000.0, 1000000.0}) {
        SCOPED_TRACE(::testing::Message() << head_dim << " " << pos << " " << theta);
        constexpr int64_t kHeads = 3;
        const std::vector<float> v = RandomVector(kHeads * head_dim, seed++);
        std::vector<float> expected = v, actual = v;
        reference::RopeInterleaved(expected.data(), kHeads, head_dim, pos, theta);
        RopeInterleaved(actual.data(), kHeads, head_dim, pos, theta);
        for (int64_t i = 0; i < kHeads * head_dim; i += 2) {
          const double bound = 4e-7 * (std::fabs(v[i]) + std::fabs(v[i + 1]));
          ASSERT_NEAR(actual[i], expected[i], bound) << i;
          ASSERT_NEAR(actual[i + 1], expected[i + 1], bound) << i;
        }
      }
    }
  }
}

// Highway's Exp is within 1 ulp (std::exp too); the sum runs in f32 over chunks of 16 vectors,
// then in f64 (< 32·2^-24 < 2e-6 relative); the normalisation multiplies by a rounded reciprocal
// where the reference divides (2 ulps). Hence 4e-6 relative.
TEST_P(ElementwiseTest, Softmax) {
  uint32_t seed = 100;
  for (int64_t n : kLengths) {
    SCOPED_TRACE(n);
    std::vector<float> x = RandomVector(n, seed++, 5.0f);
    if (n > 2) x[1] = -std::numeric_limits<float>::infinity();  // masked entries become 0
    std::vector<float> expected = x, actual = x;
    reference::Softmax(expected.data(), n);
    Softmax(actual.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(actual[i], expected[i], 4e-6 * expected[i] + 1e-38);
  }
}

// ReLU-type activations are exact. SiLU: Exp (1 ulp) and a division; GELU: Highway's Tanh
// (a few ulps of 1) inside 0.5·g·(1 + tanh): near tanh = -1 the cancellation makes the error
// absolute, up to ~ulp(1)·|g·u|. Hence |actual - expected| <= 1e-6·(|expected| + |g·u|).
TEST_P(ElementwiseTest, FfnCombineAllActivations) {
  const ActivationKind kAll[] = {ActivationKind::kSilu,       ActivationKind::kGelu,
                                 ActivationKind::kRelu,       ActivationKind::kRelu2,
                                 ActivationKind::kDRelu,      ActivationKind::kFatRelu,
                                 ActivationKind::kShiftedRelu};
  uint32_t seed = 200;
  for (ActivationKind act : kAll) {
    for (int64_t n : kLengths) {
      SCOPED_TRACE(::testing::Message() << static_cast<int>(act) << " n=" << n);
      std::vector<float> gate = RandomVector(n, seed++, 4.0f);
      const std::vector<float> up = RandomVector(n, seed++, 2.0f);
      if (n > 3) {  // the tails of the exponentials
        gate[0] = -120.0f;
        gate[1] = 95.0f;
        gate[2] = 0.25f;  // exactly the threshold of the thresholded variants below
      }
      std::vector<float> expected(n), actual(n);
      reference::FfnCombine(act, 0.25f, gate.data(), up.data(), n, expected.data());
      FfnCombine(act, 0.25f, gate.data(), up.data(), n, actual.data());
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_NEAR(actual[i], expected[i],
                    1e-6 * (std::fabs(expected[i]) + std::fabs(gate[i] * up[i])) + 1e-30)
            << "gate " << gate[i] << " up " << up[i];
      }
    }
  }
}

TEST_P(ElementwiseTest, ShiftedReluAndAddAreExact) {
  uint32_t seed = 300;
  for (int64_t n : kLengths) {
    SCOPED_TRACE(n);
    const std::vector<float> x = RandomVector(n, seed++);
    std::vector<float> expected = x, actual = x;
    reference::ShiftedRelu(expected.data(), n, 0.3f);
    ShiftedRelu(actual.data(), n, 0.3f);
    ASSERT_EQ(actual, expected);
    const std::vector<float> y = RandomVector(n, seed++);
    std::vector<float> sum_expected = y, sum_actual = y;
    reference::Add(x.data(), n, sum_expected.data());
    Add(x.data(), n, sum_actual.data());
    ASSERT_EQ(sum_actual, sum_expected);
  }
}

INSTANTIATE_TEST_SUITE_P(AllTargets, ElementwiseTest, ::testing::ValuesIn(AllTargetsAndThreads()),
                         ParamName);

}  // namespace
}  // namespace pinfer::cpu::testing
