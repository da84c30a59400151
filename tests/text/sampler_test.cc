// Each sampler stage on small distributions whose outcome is known, and reproducibility by seed.
#include "runtime/text/sampler.h"

#include <cmath>
#include <map>
#include <vector>

#include "gtest/gtest.h"

namespace pinfer {
namespace {

// Logits whose softmax is exactly `probabilities`.
std::vector<float> LogitsOf(const std::vector<double>& probabilities) {
  std::vector<float> logits;
  for (double p : probabilities) logits.push_back(static_cast<float>(std::log(p)));
  return logits;
}

SamplerParams Plain(uint64_t seed = 1) {
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.repeat_penalty = 1.0f;
  p.seed = seed;
  return p;
}

// Frequencies of each token over `draws` samples.
std::vector<double> Frequencies(Sampler& sampler, const std::vector<float>& logits, int draws) {
  std::vector<double> counts(logits.size(), 0.0);
  for (int i = 0; i < draws; ++i) counts[static_cast<size_t>(sampler.Sample(logits))] += 1.0;
  for (double& c : counts) c /= draws;
  return counts;
}

const std::vector<double> kProbabilities = {0.5, 0.3, 0.15, 0.05};

TEST(SamplerTest, GreedyPicksTheFirstLargestLogit) {
  SamplerParams p = Plain();
  p.temperature = 0.0f;
  Sampler sampler(p);
  EXPECT_EQ(sampler.Sample(std::vector<float>{0.1f, 2.0f, -1.0f, 2.0f}), 1);
  EXPECT_EQ(sampler.Sample(LogitsOf(kProbabilities)), 0);
  p.temperature = -1.0f;  // llama.cpp: any temperature <= 0 is greedy
  Sampler negative(p);
  EXPECT_EQ(negative.Sample(std::vector<float>{0.0f, 0.0f, 3.0f}), 2);
  EXPECT_EQ(negative.Sample(std::vector<float>{}), -1);
}

TEST(SamplerTest, TemperatureOneDrawsFromTheSoftmax) {
  Sampler sampler(Plain());
  const std::vector<double> f = Frequencies(sampler, LogitsOf(kProbabilities), 40000);
  for (size_t i = 0; i < kProbabilities.size(); ++i) EXPECT_NEAR(f[i], kProbabilities[i], 0.01);
}

TEST(SamplerTest, TemperatureSharpensAndFlattens) {
  // At temperature T, p_i ∝ p_i^(1/T).
  for (float temperature : {0.5f, 2.0f}) {
    SamplerParams p = Plain();
    p.temperature = temperature;
    Sampler sampler(p);
    std::vector<double> expected;
    double sum = 0;
    for (double q : kProbabilities) sum += std::pow(q, 1.0 / temperature);
    for (double q : kProbabilities) expected.push_back(std::pow(q, 1.0 / temperature) / sum);
    const std::vector<double> f = Frequencies(sampler, LogitsOf(kProbabilities), 40000);
    for (size_t i = 0; i < expected.size(); ++i) {
      EXPECT_NEAR(f[i], expected[i], 0.01) << "T " << temperature << " token " << i;
    }
  }
}

TEST(SamplerTest, TopKKeepsTheKMostLikely) {
  SamplerParams p = Plain();
  p.top_k = 2;
  Sampler sampler(p);
  const std::vector<double> f = Frequencies(sampler, LogitsOf(kProbabilities), 20000);
  EXPECT_NEAR(f[0], 0.5 / 0.8, 0.015);
  EXPECT_NEAR(f[1], 0.3 / 0.8, 0.015);
  EXPECT_EQ(f[2], 0.0);
  EXPECT_EQ(f[3], 0.0);
  p.top_k = 1;
  Sampler one(p);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(one.Sample(LogitsOf(kProbabilities)), 0);
}

TEST(SamplerTest, TopPKeepsTheSmallestPrefixReachingP) {
  SamplerParams p = Plain();
  p.top_p = 0.7f;  // 0.5 < 0.7 <= 0.5 + 0.3: the first two stay
  Sampler sampler(p);
  const std::vector<double> f = Frequencies(sampler, LogitsOf(kProbabilities), 20000);
  EXPECT_NEAR(f[0], 0.5 / 0.8, 0.015);
  EXPECT_EQ(f[2] + f[3], 0.0);
  p.top_p = 0.9f;  // three stay
  Sampler three(p);
  const std::vector<double> g = Frequencies(three, LogitsOf(kProbabilities), 20000);
  EXPECT_GT(g[2], 0.1);
  EXPECT_EQ(g[3], 0.0);
}

TEST(SamplerTest, MinPDropsTokensBelowAFractionOfTheBest) {
  SamplerParams p = Plain();
  p.min_p = 0.35f;  // keeps p >= 0.175: tokens 0 and 1
  Sampler sampler(p);
  const std::vector<double> f = Frequencies(sampler, LogitsOf(kProbabilities), 20000);
  EXPECT_NEAR(f[1], 0.3 / 0.8, 0.015);
  EXPECT_EQ(f[2] + f[3], 0.0);
  p.min_p = 0.25f;  // 0.125: token 2 (0.15) stays too
  Sampler three(p);
  EXPECT_GT(Frequencies(three, LogitsOf(kProbabilities), 20000)[2], 0.1);
}

TEST(SamplerTest, RepetitionPenaltyOverTheLastTokens) {
  SamplerParams p = Plain();
  p.temperature = 0.0f;
  p.repeat_penalty = 2.0f;
  p.repeat_last_n = 2;
  Sampler sampler(p);
  const std::vector<float> logits = {3.0f, 2.0f, -1.0f, 1.0f};
  EXPECT_EQ(sampler.Sample(logits), 0);
  sampler.Accept(0);  // 3 → 1.5: token 1 (2.0) wins
  EXPECT_EQ(sampler.Sample(logits), 1);
  sampler.Accept(1);  // 2 → 1: token 0 (1.5) wins again
  EXPECT_EQ(sampler.Sample(logits), 0);
  sampler.Accept(3);  // the window of 2 now holds 1 and 3: token 0 is no longer penalised
  EXPECT_EQ(sampler.Sample(logits), 0);
  // Negative logits are multiplied, so a penalised token never gains.
  Sampler negative(p);
  const std::vector<float> all_negative = {-1.0f, -1.5f};
  negative.Accept(0);
  EXPECT_EQ(negative.Sample(all_negative), 1);  // -1 → -2
}

TEST(SamplerTest, TheSameSeedGivesTheSameDraws) {
  const std::vector<float> logits = LogitsOf({0.2, 0.2, 0.2, 0.2, 0.2});
  Sampler a(Plain(42)), b(Plain(42)), c(Plain(43));
  std::vector<int32_t> da, db, dc;
  for (int i = 0; i < 64; ++i) {
    da.push_back(a.Sample(logits));
    db.push_back(b.Sample(logits));
    dc.push_back(c.Sample(logits));
  }
  EXPECT_EQ(da, db);
  EXPECT_NE(da, dc);
  a.Reset();
  std::vector<int32_t> again;
  for (int i = 0; i < 64; ++i) again.push_back(a.Sample(logits));
  EXPECT_EQ(again, da);
}

TEST(SamplerTest, ValidateNamesTheFlag) {
  SamplerParams p;
  EXPECT_TRUE(p.Validate().ok());
  p.top_p = 1.5f;
  EXPECT_NE(p.Validate().message().find("--top-p"), absl::string_view::npos);
  p = SamplerParams();
  p.min_p = -0.1f;
  EXPECT_NE(p.Validate().message().find("--min-p"), absl::string_view::npos);
  p = SamplerParams();
  p.repeat_penalty = 0.0f;
  EXPECT_NE(p.Validate().message().find("--repeat-penalty"), absl::string_view::npos);
  p = SamplerParams();
  p.temperature = NAN;
  EXPECT_NE(p.Validate().message().find("--temp"), absl::string_view::npos);
}

}  // namespace
}  // namespace pinfer
