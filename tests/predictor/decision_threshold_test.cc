// The threshold choice on validation logits (tools/train_predictor/decision_threshold.h).
#include "tools/train_predictor/decision_threshold.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace pinfer {
namespace {

// Adds one sample per row of (logits, fired) pairs.
void AddSample(LogitHistogram& h, const std::vector<float>& logits, const std::vector<int>& fired) {
  std::vector<uint8_t> mask((logits.size() + 7) / 8, 0);
  for (size_t i = 0; i < fired.size(); ++i) {
    if (fired[i]) mask[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
  }
  h.Add(logits.data(), mask.data(), static_cast<int64_t>(logits.size()));
}

TEST(LogitHistogramTest, CountsAtAnEdgeAreTheRuntimesTest) {
  LogitHistogram h;
  // 4 neurons x 2 samples. Fired logits: 2.0, 0.5, -1.0, 0.0; quiet ones: -3, 0.25, 1.0, -20.
  AddSample(h, {2.0f, 0.5f, -3.0f, 0.25f}, {1, 1, 0, 0});
  AddSample(h, {-1.0f, 1.0f, 0.0f, -20.0f}, {1, 0, 1, 0});
  // z >= 0: predicted {2.0, 0.5, 0.25, 1.0, 0.0}; fired among them {2.0, 0.5, 0.0}.
  const DecisionStats at0 = h.At(0.0f);
  EXPECT_EQ(at0.logit_threshold, 0.0f);
  EXPECT_DOUBLE_EQ(at0.recall, 3.0 / 4.0);
  EXPECT_DOUBLE_EQ(at0.precision, 3.0 / 5.0);
  EXPECT_DOUBLE_EQ(at0.predicted_density, 5.0 / 8.0);
  EXPECT_DOUBLE_EQ(at0.true_density, 4.0 / 8.0);
  // A logit exactly at the edge counts as predicted; one just below does not.
  EXPECT_DOUBLE_EQ(h.At(0.5f).recall, 2.0 / 4.0);
  EXPECT_DOUBLE_EQ(h.At(0.5f + 1.0f / 256).recall, 1.0 / 4.0);
  EXPECT_EQ(h.samples(), 2);
}

TEST(LogitHistogramTest, ForRecallPicksTheHighestEdgeThatReachesTheTarget) {
  LogitHistogram h;
  AddSample(h, {2.0f, 0.5f, -3.0f, 0.25f}, {1, 1, 0, 0});
  AddSample(h, {-1.0f, 1.0f, 0.0f, -20.0f}, {1, 0, 1, 0});
  // All 4 fired logits must be kept: the edge at -1.0 (the lowest fired logit).
  const DecisionStats all = h.ForRecall(1.0);
  EXPECT_EQ(all.logit_threshold, -1.0f);
  EXPECT_DOUBLE_EQ(all.recall, 1.0);
  EXPECT_DOUBLE_EQ(all.precision, 4.0 / 6.0);
  // 3 of 4 suffice for 0.75: the edge at 0.0.
  EXPECT_EQ(h.ForRecall(0.75).logit_threshold, 0.0f);
  EXPECT_EQ(h.ForRecall(0.5).logit_threshold, 0.5f);
}

TEST(LogitHistogramTest, RecallReachesTheTargetOnRandomLogits) {
  std::mt19937 g(1);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::bernoulli_distribution coin(0.3);
  LogitHistogram h;
  std::vector<float> fired_logits, quiet_logits;
  for (int s = 0; s < 500; ++s) {
    std::vector<float> logits(50);
    std::vector<int> fired(50);
    for (int i = 0; i < 50; ++i) {
      fired[static_cast<size_t>(i)] = coin(g);
      logits[static_cast<size_t>(i)] = normal(g) + (fired[static_cast<size_t>(i)] ? 2.0f : -2.0f);
      (fired[static_cast<size_t>(i)] ? fired_logits : quiet_logits)
          .push_back(logits[static_cast<size_t>(i)]);
    }
    AddSample(h, logits, fired);
  }
  for (double target : {0.9, 0.99, 0.999}) {
    const DecisionStats d = h.ForRecall(target);
    // Recount directly: the recall at the chosen edge, and that the next edge up misses it.
    int64_t kept = 0, kept_above = 0;
    for (float z : fired_logits) {
      kept += z >= d.logit_threshold;
      kept_above += z >= d.logit_threshold + 1.0f / 256;
    }
    const double n = static_cast<double>(fired_logits.size());
    EXPECT_DOUBLE_EQ(d.recall, kept / n);
    EXPECT_GE(d.recall, target);
    EXPECT_LT(kept_above / n, target);
    int64_t false_alarms = 0;
    for (float z : quiet_logits) false_alarms += z >= d.logit_threshold;
    EXPECT_DOUBLE_EQ(d.precision, static_cast<double>(kept) / (kept + false_alarms));
    EXPECT_DOUBLE_EQ(d.predicted_density, (kept + false_alarms) / (500.0 * 50));
  }
}

TEST(LogitHistogramTest, NothingFiredOrOutOfRange) {
  LogitHistogram h;
  AddSample(h, {-30.0f, 40.0f, NAN}, {0, 0, 0});
  const DecisionStats d = h.ForRecall(0.99);
  EXPECT_DOUBLE_EQ(d.recall, 1.0);
  EXPECT_DOUBLE_EQ(d.true_density, 0.0);
  EXPECT_DOUBLE_EQ(d.predicted_density, 1.0 / 3.0);  // only the logit above the range
  EXPECT_LT(d.logit_threshold, LogitHistogram::kMaxLogit);
}

}  // namespace
}  // namespace pinfer
