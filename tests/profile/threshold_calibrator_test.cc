// ThresholdCalibrator: the exact quantile while every value fits the reservoir, a close estimate
// once it samples, the same thresholds for the same seed.
#include "tools/profile/threshold_calibrator.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace pinfer {
namespace {

// Offers `values` as gate products of one layer in batches of `n_ff`-wide rows.
void Offer(ThresholdCalibrator& c, int64_t layer, const std::vector<float>& values, int64_t n_ff) {
  const std::vector<int32_t> tokens(static_cast<size_t>(values.size() / n_ff), 0);
  for (size_t first = 0; first < tokens.size(); first += 5) {
    const size_t n = std::min<size_t>(5, tokens.size() - first);
    FfnTrace t;
    t.layer = layer;
    t.tokens = std::span<const int32_t>(tokens).subspan(first, n);
    t.n_ff = n_ff;
    t.gate = values.data() + first * n_ff;
    c.OnFfn(t);
  }
}

TEST(ThresholdCalibratorTest, ExactQuantileWhenEverythingFits) {
  // Activation none: |g| is the value. 0.5, 1.5, ... 99.5 shuffled, signs alternating.
  std::vector<float> values;
  for (int i = 0; i < 100; ++i) values.push_back((i % 2 ? -1 : 1) * (i + 0.5f));
  std::shuffle(values.begin(), values.end(), std::mt19937(3));
  ThresholdCalibrator c(1, Activation{ActivationKind::kNone, 0}, 1000);
  Offer(c, 0, values, 10);
  EXPECT_EQ(c.values_seen(0), 100);
  EXPECT_EQ(c.values_kept(0), 100);
  EXPECT_FLOAT_EQ(c.Thresholds(0.3)[0], 29.5f);  // 30 values at or below
  EXPECT_FLOAT_EQ(c.Thresholds(0.95)[0], 94.5f);
  EXPECT_FLOAT_EQ(c.Thresholds(0.001)[0], 0.0f);  // k = 0
}

TEST(ThresholdCalibratorTest, ReservoirEstimateIsCloseAndDeterministic) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::vector<float> values(200000);
  for (float& v : values) v = uniform(rng);
  std::vector<float> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  for (double target : {0.4, 0.6, 0.9}) {
    ThresholdCalibrator a(2, Activation{ActivationKind::kNone, 0}, 20000, 5);
    ThresholdCalibrator b(2, Activation{ActivationKind::kNone, 0}, 20000, 5);
    Offer(a, 1, values, 100);
    Offer(b, 1, values, 100);
    EXPECT_EQ(a.values_seen(1), 200000);
    EXPECT_EQ(a.values_kept(1), 20000);
    const float tau = a.Thresholds(target)[1];
    EXPECT_EQ(tau, b.Thresholds(target)[1]);
    // The fraction of all values at or below τ is within 1% of the target (standard error 0.35%).
    const double below =
        double(std::upper_bound(sorted.begin(), sorted.end(), tau) - sorted.begin()) /
        sorted.size();
    EXPECT_NEAR(below, target, 0.01);
  }
  EXPECT_EQ(ThresholdCalibrator::DefaultCapacity(32), 1 << 20);
  EXPECT_EQ(ThresholdCalibrator::DefaultCapacity(1), 1 << 22);
  EXPECT_EQ(ThresholdCalibrator::DefaultCapacity(4096), 1 << 16);
}

TEST(ThresholdCalibratorTest, UsesTheGateActivation) {
  // silu: |silu(-10)| ≈ 4.5e-4 is small although |g| is large.
  const std::vector<float> values = {-10.0f, 1.0f, 2.0f, 3.0f};
  ThresholdCalibrator c(1, Activation{ActivationKind::kSilu, 0}, 100);
  Offer(c, 0, values, 4);
  EXPECT_NEAR(c.Thresholds(0.25)[0], 10.0f / (1.0f + std::exp(10.0f)), 1e-7);
  EXPECT_NEAR(c.Thresholds(0.5)[0], 1.0f / (1.0f + std::exp(-1.0f)), 1e-6);
}

}  // namespace
}  // namespace pinfer
