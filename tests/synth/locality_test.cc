#include "bench/synth/locality.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pinfer::synth {
namespace {

using ::testing::HasSubstr;

TEST(LocalityTest, ParsesTheGrammar) {
  absl::StatusOr<LocalitySpec> spec = ParseLocality("power-law:alpha=1.2,hot=0.1,density=0.2");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_DOUBLE_EQ(spec->alpha, 1.2);
  EXPECT_DOUBLE_EQ(spec->hot, 0.1);
  EXPECT_DOUBLE_EQ(spec->density, 0.2);
  EXPECT_EQ(spec->ToString(), "power-law:alpha=1.2,hot=0.1,density=0.2");
  // Keys in any order, missing ones at their defaults.
  spec = ParseLocality("power-law:density=0.05");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_DOUBLE_EQ(spec->density, 0.05);
  EXPECT_DOUBLE_EQ(spec->alpha, LocalitySpec().alpha);
  EXPECT_TRUE(ParseLocality(LocalitySpec().ToString()).ok());
  EXPECT_EQ(LocalitySpec().latent, 0);
  // Latent directions (learnable locality), with a share of noise; the text round-trips.
  spec = ParseLocality("power-law:latent=16,noise=0.1,density=0.1");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->latent, 16);
  EXPECT_DOUBLE_EQ(spec->noise, 0.1);
  EXPECT_EQ(spec->ToString(), "power-law:alpha=1.5,hot=0.04,density=0.1,latent=16,noise=0.1");
  EXPECT_EQ(ParseLocality(spec->ToString())->ToString(), spec->ToString());
}

TEST(LocalityTest, RejectsBadSpecsWithTheReason) {
  const std::pair<const char*, const char*> bad[] = {
      {"zipf:alpha=1", "expected power-law:alpha=A,hot=H,density=D"},
      {"power-law:alpha=x", "alpha needs a number, got 'x'"},
      {"power-law:beta=1", "unknown key 'beta'"},
      {"power-law:alpha=1,alpha=2", "alpha is given twice"},
      {"power-law:density=1.5", "density must be in (0, 1), got 1.5"},
      {"power-law:density=0", "density must be in (0, 1)"},
      {"power-law:hot=0", "hot must be in (0, 1)"},
      {"power-law:alpha=-1", "alpha must be in [0, 16]"},
      {"power-law:density=nan", "density needs a number"},
      {"power-law:latent=2.5", "latent must be a whole number in [0, 4096]"},
      {"power-law:latent=-1", "latent must be a whole number"},
      {"power-law:latent=8,noise=1", "noise must be in [0, 1)"},
      {"power-law:noise=0.2", "noise needs latent directions"},
  };
  for (const auto& [text, reason] : bad) {
    absl::StatusOr<LocalitySpec> spec = ParseLocality(text);
    ASSERT_FALSE(spec.ok()) << text;
    EXPECT_THAT(spec.status().message(), HasSubstr(std::string("--locality '") + text + "'"));
    EXPECT_THAT(spec.status().message(), HasSubstr(reason));
  }
}

TEST(FiringLawTest, MeanIsTheDensityAndTheHotSetFiresAtPHot) {
  const LocalitySpec spec{1.5, 0.04, 0.1};
  absl::StatusOr<FiringLaw> law = FiringLaw::Solve(spec, 11008);
  ASSERT_TRUE(law.ok()) << law.status();
  double sum = 0;
  for (int64_t k = 0; k < 11008; ++k) sum += law->Probability(k);
  EXPECT_NEAR(sum / 11008, 0.1, 1e-12);
  // Continuous approximation: mean = p_hot·(h + (h^α − h)/(1 − α)).
  const double h = 0.04, a = 1.5;
  EXPECT_NEAR(law->hot_probability(), 0.1 / (h + (std::pow(h, a) - h) / (1 - a)), 1e-3);
  EXPECT_EQ(law->HotCount(), 440);  // ranks with (k + 1/2)/n < 0.04
  EXPECT_DOUBLE_EQ(law->Probability(0), law->hot_probability());
  EXPECT_DOUBLE_EQ(law->Probability(439), law->hot_probability());
  EXPECT_LT(law->Probability(440), law->hot_probability());
  // The tail decays as the power law: rank r·4 fires 4^-α as often as rank r.
  EXPECT_NEAR(law->Probability(4 * 2000 + 1) / law->Probability(2000), std::pow(4.0, -1.5), 1e-3);
  for (int64_t k = 1; k < 11008; ++k) EXPECT_LE(law->Probability(k), law->Probability(k - 1));
}

TEST(FiringLawTest, AlphaZeroIsUniform) {
  absl::StatusOr<FiringLaw> law = FiringLaw::Solve({0.0, 0.1, 0.25}, 1000);
  ASSERT_TRUE(law.ok()) << law.status();
  for (int64_t k = 0; k < 1000; ++k) EXPECT_NEAR(law->Probability(k), 0.25, 1e-12);
}

TEST(FiringLawTest, UnreachableDensityIsAnError) {
  absl::StatusOr<FiringLaw> law = FiringLaw::Solve({3.0, 0.01, 0.5}, 4096);
  ASSERT_FALSE(law.ok());
  EXPECT_THAT(law.status().message(), HasSubstr("density 0.5 is out of reach"));
  EXPECT_THAT(law.status().message(), HasSubstr("lower the density"));
}

TEST(FiringLawTest, LayersScatterTheRanksWithSeededPermutations) {
  absl::StatusOr<FiringLaw> law = FiringLaw::Solve({1.5, 0.04, 0.1}, 2048);
  ASSERT_TRUE(law.ok());
  std::vector<double> expected(2048);
  for (int64_t k = 0; k < 2048; ++k) expected[k] = law->Probability(k);
  const std::vector<double> layer0 = law->LayerProbabilities(5, 0);
  const std::vector<double> layer1 = law->LayerProbabilities(5, 1);
  EXPECT_EQ(layer0, law->LayerProbabilities(5, 0));  // reproducible
  EXPECT_NE(layer0, layer1);
  EXPECT_NE(layer0, law->LayerProbabilities(6, 0));
  for (std::vector<double> layer : {layer0, layer1}) {
    std::sort(layer.begin(), layer.end(), std::greater<>());
    EXPECT_EQ(layer, expected);  // a permutation of the law
  }
  // Hot neurons are scattered, not the first indices.
  int64_t hot_among_first = 0;
  for (int64_t i = 0; i < law->HotCount(); ++i)
    hot_among_first += layer0[i] == law->hot_probability();
  EXPECT_LT(hot_among_first, law->HotCount() / 2);
}

}  // namespace
}  // namespace pinfer::synth
