#include "bench/synth/synth_random.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace pinfer::synth {
namespace {

// Φ⁻¹ by bisection on Φ: slow and obviously right.
double QuantileByBisection(double p) {
  double lo = -40, hi = 40;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    (NormalCdf(mid) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

TEST(NormalDistributionTest, QuantileInvertsTheCdf) {
  for (double p :
       {1e-12, 1e-6, 0.001, 0.01, 0.02425, 0.1, 0.3, 0.5, 0.7, 0.9, 0.97575, 0.999, 1 - 1e-6}) {
    SCOPED_TRACE(p);
    const double exact = QuantileByBisection(p);
    EXPECT_NEAR(NormalQuantile(p), exact, 1e-9 * std::max(1.0, std::fabs(exact)));
    EXPECT_NEAR(NormalQuantileFast(p), exact, 1e-6 * std::max(1.0, std::fabs(exact)));
  }
  EXPECT_DOUBLE_EQ(NormalQuantile(0.5), 0.0);
  EXPECT_NEAR(NormalQuantile(0.975), 1.959963984540054, 1e-12);
  EXPECT_NEAR(NormalCdf(1.0), 0.8413447460685429, 1e-15);
  EXPECT_NEAR(NormalPdf(0.0), 0.3989422804014327, 1e-15);
}

TEST(RandomStreamTest, NormalDeviatesHaveTheNormalMomentsAndTails) {
  constexpr size_t kN = 1 << 20;
  std::vector<float> x(kN);
  RandomStream(StreamKey(7, "moments", 0)).FillNormal(x.data(), kN);
  double sum = 0, sum2 = 0, sum4 = 0;
  size_t beyond2 = 0, beyond3 = 0;
  for (float v : x) {
    ASSERT_TRUE(std::isfinite(v));
    sum += v;
    sum2 += static_cast<double>(v) * v;
    sum4 += static_cast<double>(v) * v * v * v;
    beyond2 += std::fabs(v) > 2;
    beyond3 += std::fabs(v) > 3;
  }
  const double n = kN;
  EXPECT_NEAR(sum / n, 0.0, 5 / std::sqrt(n));
  EXPECT_NEAR(sum2 / n, 1.0, 5 * std::sqrt(2 / n));
  EXPECT_NEAR(sum4 / n, 3.0, 0.05);  // kurtosis of a normal
  EXPECT_NEAR(beyond2 / n, 2 * NormalCdf(-2), 5 * std::sqrt(0.0455 / n));
  EXPECT_NEAR(beyond3 / n, 2 * NormalCdf(-3), 5 * std::sqrt(0.0027 / n));
}

TEST(RandomStreamTest, StreamsArePureFunctionsOfTheirKey) {
  std::vector<float> a(1000), b(1000), c(1000), d(1000);
  RandomStream(StreamKey(1, "blk.0.ffn_gate", 5)).FillNormal(a.data(), a.size());
  RandomStream(StreamKey(1, "blk.0.ffn_gate", 5)).FillNormal(b.data(), b.size());
  RandomStream(StreamKey(1, "blk.0.ffn_gate", 6)).FillNormal(c.data(), c.size());
  RandomStream(StreamKey(2, "blk.0.ffn_gate", 5)).FillNormal(d.data(), d.size());
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a, d);
  EXPECT_NE(StreamKey(1, "blk.0.ffn_up", 5), StreamKey(1, "blk.0.ffn_gate", 5));
  // FNV-1a is fixed by its definition: the output never changes between builds.
  EXPECT_EQ(HashName(""), 0xCBF29CE484222325ull);
  EXPECT_EQ(HashName("a"), 0xAF63DC4C8601EC8Cull);
}

}  // namespace
}  // namespace pinfer::synth
