// --sparse-mode auto's choice (FfnCostModel::ChooseMode, ffn_cost_model.h) on hand-made costs: a
// predictor that reads more than it saves is never chosen, a cheap one is, an unknown firing
// density is measured by one exact call, a dense layer stays dense; and the load-time measurement
// times the gate pass and the predictor.
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/exec/ffn_cost_model.h"
#include "runtime/model/predictor_weights.h"
#include "tests/runtime/runtime_harness.h"
#include "tests/runtime/test_models.h"

namespace pinfer {
namespace {

// One layer whose costs are its bytes (1 s per byte): dense 3 units, gate 1, up+down 2.
FfnCostModel Linear(double predictor_seconds) {
  FfnCostModel cost;
  FfnCostCurve c;
  c.dense_seconds = 3.0;
  c.sparse_base = 0.0;
  c.sparse_slope = 3.0;
  c.gate_seconds = 1.0;
  c.up_down_share = 2.0 / 3.0;
  c.crossover = 1.0;
  cost.curves = {c};
  cost.predictor = {PredictorCost{predictor_seconds, 0.0}};
  return cost;
}

AutoInputs Inputs(double fired, double predicted, double predictor_bytes) {
  AutoInputs in;
  in.fired = fired;
  in.predicted = predicted;
  in.has_predictor = predictor_bytes > 0;
  in.gate_bytes = 1.0;
  in.up_down_bytes = 2.0;
  in.predictor_bytes = predictor_bytes;
  return in;
}

TEST(AutoModeTest, APredictorThatCostsMoreThanItSavesIsNeverChosen) {
  // Larger than the layer's FFN (as relu-llama-260k's trained predictor nearly is): whatever it
  // predicts, and even if it took no time, it reads more than dense.
  for (double predicted : {-1.0, 0.0, 0.05, 0.5}) {
    EXPECT_NE(Linear(0.0).ChooseMode(0, 1, Inputs(0.9, predicted, 3.5)), AutoMode::kPredictor)
        << predicted;
    EXPECT_NE(Linear(0.0).ChooseMode(0, 1, Inputs(0.2, predicted, 3.5)), AutoMode::kPredictor)
        << predicted;
  }
  // Small but slow: its own time is more than exact's whole cost.
  EXPECT_EQ(Linear(2.0).ChooseMode(0, 1, Inputs(0.2, 0.05, 0.1)), AutoMode::kExact);
  // Small in bytes and time, but selecting too much to beat exact (1 + 0.2 * 2 = 1.4 against
  // 0.1 + 0.6 * 3 = 1.9).
  EXPECT_EQ(Linear(0.1).ChooseMode(0, 1, Inputs(0.2, 0.6, 0.1)), AutoMode::kExact);
  // A saving within the 5% margin is not worth an approximate selection: 0.1 + 0.45 * 3 = 1.45
  // against exact's 1 + 0.25 * 2 = 1.5 in time and in bytes.
  EXPECT_EQ(Linear(0.1).ChooseMode(0, 1, Inputs(0.25, 0.45, 0.1)), AutoMode::kExact);
  EXPECT_EQ(Linear(0.1).ChooseMode(0, 1, Inputs(0.25, 0.40, 0.1)), AutoMode::kPredictor);
}

TEST(AutoModeTest, ACheapPredictorIsChosen) {
  // 0.1 + 0.1 * 3 = 0.4 against exact's 1 + 0.05 * 2 = 1.1.
  EXPECT_EQ(Linear(0.1).ChooseMode(0, 1, Inputs(0.05, 0.1, 0.1)), AutoMode::kPredictor);
  // Not known yet: tried, since its fixed cost alone can win.
  EXPECT_EQ(Linear(0.1).ChooseMode(0, 1, Inputs(0.05, -1.0, 0.1)), AutoMode::kPredictor);
  // Without measured curves the bytes decide: 0.1 + 0.1 * 3 = 0.4 against 1 + 0.05 * 2.
  AutoInputs in = Inputs(0.05, 0.1, 0.1);
  EXPECT_EQ(FfnCostModel::Fixed(0.5).ChooseMode(0, 1, in), AutoMode::kPredictor);
}

TEST(AutoModeTest, ExactMeasuresAnUnknownDensityAndDenseWinsWhenMostNeuronsFire) {
  EXPECT_EQ(Linear(0.0).ChooseMode(0, 1, Inputs(-1.0, -1.0, 0.0)), AutoMode::kExact);
  // 1 + 0.3 * 2 = 1.6 < 3.
  EXPECT_EQ(Linear(0.0).ChooseMode(0, 1, Inputs(0.3, -1.0, 0.0)), AutoMode::kExact);
  // 1 + 1 * 2 = 3.0 is not below dense.
  EXPECT_EQ(Linear(0.0).ChooseMode(0, 1, Inputs(1.0, -1.0, 0.0)), AutoMode::kDense);
  // The expected costs are those of the comment in ffn_cost_model.h.
  const ModeCost exact = Linear(0.0).Expected(AutoMode::kExact, 0, 1, Inputs(0.3, -1.0, 0.0));
  EXPECT_NEAR(exact.seconds, 1.6, 1e-12);
  EXPECT_NEAR(exact.bytes, 1.6, 1e-12);
}

TEST(AutoModeTest, TheMeasurementTimesTheGatePassAndThePredictor) {
  test::Loaded l = test::LoadForTest(test::ConvertedModel(test::BundledModel::kReluLlama260K), 64);
  ASSERT_NE(l.model, nullptr);
  absl::StatusOr<FfnCostModel> cost = MeasureFfnCostModel(*l.model);
  ASSERT_TRUE(cost.ok()) << cost.status();
  EXPECT_TRUE(cost->predictor.empty());
  for (const FfnCostCurve& c : cost->curves) {
    EXPECT_GT(c.gate_seconds, 0.0);
    EXPECT_GE(c.gate_per_token, 0.0);
    // q8_0 rows of equal length: up and down are two of the three.
    EXPECT_NEAR(c.up_down_share, 2.0 / 3.0, 1e-9);
  }
}

}  // namespace
}  // namespace pinfer
