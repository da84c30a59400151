// LayerNorm and the bias add against their f64 references, and against values worked by hand.
#include "runtime/cpu/layer_norm.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace pinfer::cpu {
namespace {

TEST(LayerNormTest, MatchesHandWorkedValues) {
  // x = [1, 2, 3, 6]: mean 3, biased variance (4 + 1 + 0 + 9) / 4 = 3.5.
  const float x[] = {1, 2, 3, 6};
  const float w[] = {1, 2, 0.5f, 1};
  const float b[] = {0, 1, 0, -1};
  float out[4];
  LayerNorm(x, w, b, 4, 0.0f, out);
  const double s = 1.0 / std::sqrt(3.5);
  EXPECT_NEAR(out[0], -2 * s, 1e-6);
  EXPECT_NEAR(out[1], -1 * s * 2 + 1, 1e-6);
  EXPECT_NEAR(out[2], 0.0, 1e-6);
  EXPECT_NEAR(out[3], 3 * s - 1, 1e-6);
}

TEST(LayerNormTest, MatchesReferenceWithALargeMeanAndInPlace) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const int64_t n : {1, 7, 64, 300}) {
    std::vector<float> x(n), w(n), b(n);
    // A mean far above the spread: a one-pass variance would cancel to garbage.
    for (int64_t i = 0; i < n; ++i) {
      x[i] = 1000.0f + normal(rng);
      w[i] = normal(rng);
      b[i] = normal(rng);
    }
    std::vector<float> want(n), got = x;
    reference::LayerNorm(x.data(), w.data(), b.data(), n, 1e-5f, want.data());
    LayerNorm(got.data(), w.data(), b.data(), n, 1e-5f, got.data());  // aliased
    for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(got[i], want[i], 2e-3) << "n " << n << " i " << i;
  }
}

TEST(AddBiasTest, AddsTheBiasToEveryRow) {
  const float bias[] = {1, -2, 3};
  std::vector<float> y = {0, 0, 0, 10, 20, 30};
  std::vector<float> want = y;
  AddBias(bias, 2, 3, y.data());
  reference::AddBias(bias, 2, 3, want.data());
  EXPECT_EQ(y, (std::vector<float>{1, -2, 3, 11, 18, 33}));
  EXPECT_EQ(y, want);
}

}  // namespace
}  // namespace pinfer::cpu
