// Sparse execution (one CPU part selecting, layer_ffn.h) against the dense FFN on the bundled real
// models:
//   - ReLU model, oracle selection (the true activations): exact zeros skipped give the same
//     logits as dense execution, for decode (one token per pass) and prompts (batch union);
//   - calibrated SiLU model: the oracle reproduces the thresholded model exactly;
//   - the cost model's fallback: a crossover below the layer's density sends every call to the
//     dense kernels, one above it none;
//   - --check statistics: exact for the oracle, and a selector that misses neurons is caught.
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/ffn_builder.h"
#include "runtime/exec/ffn_cost_model.h"
#include "runtime/exec/ffn_report.h"
#include "runtime/exec/layer_ffn.h"
#include "runtime/exec/session.h"
#include "runtime/model/model.h"
#include "tests/runtime/half_selector.h"
#include "tests/runtime/runtime_harness.h"
#include "tests/runtime/test_models.h"

namespace pinfer {
namespace {

using test::BundledModel;

constexpr char kPrompt[] =
    "Once upon a time, there was a little girl named Lily. She loved to play";

FiringThresholds FiringOf(const Model& model) {
  FiringThresholds firing;
  firing.activation = model.config().ffn_act;
  return firing;
}

// Installs one CPU part per layer selecting with `selector`; returns the layers' stats source.
void Install(test::Loaded& l, std::shared_ptr<NeuronSelector> selector, FiringThresholds firing,
             std::shared_ptr<const FfnCostModel> cost, bool check) {
  FfnSetup setup;
  setup.selector = std::move(selector);
  setup.firing = std::make_shared<const FiringThresholds>(std::move(firing));
  setup.cost = std::move(cost);
  setup.check = check;
  absl::StatusOr<std::vector<std::unique_ptr<LayerFfn>>> layers = BuildFfnLayers(*l.model, setup);
  ASSERT_TRUE(layers.ok()) << layers.status();
  ASSERT_TRUE(l.executor->SetFfnLayers(*std::move(layers)).ok());
}

void InstallOracle(test::Loaded& l, FiringThresholds firing, double crossover = 1.01,
                   bool check = false) {
  Install(l, std::make_shared<OracleSelector>(*l.model, firing), firing,
          std::make_shared<const FfnCostModel>(FfnCostModel::Fixed(crossover)), check);
}

void InstallDense(test::Loaded& l) {
  absl::StatusOr<std::vector<std::unique_ptr<LayerFfn>>> layers = BuildFfnLayers(*l.model, {});
  ASSERT_TRUE(layers.ok()) << layers.status();
  ASSERT_TRUE(l.executor->SetFfnLayers(*std::move(layers)).ok());
}

// Each layer's statistics (its one part's).
std::vector<FfnStats> Stats(const test::Loaded& l) {
  std::vector<FfnStats> stats;
  for (int64_t i = 0; i < l.executor->n_layers(); ++i) stats.push_back(l.executor->ffn(i).Totals());
  return stats;
}

// Logits of every position: the prompt in batches of `batch` tokens.
std::vector<float> AllLogits(test::Loaded& l, const std::vector<int32_t>& tokens, int64_t batch) {
  l.session->Reset();
  std::vector<float> logits;
  for (size_t i = 0; i < tokens.size(); i += static_cast<size_t>(batch)) {
    const size_t end = std::min(tokens.size(), i + static_cast<size_t>(batch));
    absl::StatusOr<std::span<const float>> out =
        l.session->Evaluate(std::span<const int32_t>(tokens).subspan(i, end - i), Logits::kAll);
    EXPECT_TRUE(out.ok()) << out.status();
    if (!out.ok()) return {};
    logits.insert(logits.end(), out->begin(), out->end());
  }
  return logits;
}

void ExpectSameLogits(const std::vector<float>& actual, const std::vector<float>& expected,
                      double tolerance) {
  ASSERT_EQ(actual.size(), expected.size());
  double max_diff = 0.0, max_abs = 0.0;
  for (size_t i = 0; i < actual.size(); ++i) {
    max_diff = std::max(max_diff, static_cast<double>(std::fabs(actual[i] - expected[i])));
    max_abs = std::max(max_abs, static_cast<double>(std::fabs(expected[i])));
  }
  EXPECT_LE(max_diff, tolerance * max_abs) << "max |logit| " << max_abs;
}

TEST(SparseFfnTest, OracleSparseEqualsDenseOnTheReluModel) {
  test::Loaded l = test::LoadForTest(test::ConvertedModel(BundledModel::kReluLlama260K), 128);
  ASSERT_NE(l.session, nullptr);
  ASSERT_TRUE(l.model->config().ffn_act.HasExactZeros());
  const std::vector<int32_t> tokens = l.tokenizer->Encode(kPrompt);
  ASSERT_GT(tokens.size(), 10u);
  const std::vector<float> dense_decode = AllLogits(l, tokens, 1);
  const std::vector<float> dense_batch = AllLogits(l, tokens, 64);

  InstallOracle(l, FiringOf(*l.model));
  // Only the order of the float sums in the down projection differs from dense: 1e-5 of the
  // logits' scale.
  ExpectSameLogits(AllLogits(l, tokens, 1), dense_decode, 1e-5);
  ExpectSameLogits(AllLogits(l, tokens, 64), dense_batch, 1e-5);
  // And it really ran sparse: every call, at the model's (low) density.
  const int64_t n_ff = l.model->config().n_ff;
  for (const FfnStats& s : Stats(l)) {
    EXPECT_EQ(s.dense_calls, 0);
    EXPECT_GT(s.calls, 0);
    EXPECT_LT(s.SelectedDensity(n_ff), 0.9);
  }
}

// Gate-first selection: every gate row, then only the neurons that fire. No predictor, and the
// dense output.
void InstallExact(test::Loaded& l, FiringThresholds firing) {
  FfnSetup setup;
  setup.exact = true;
  setup.firing = std::make_shared<const FiringThresholds>(std::move(firing));
  absl::StatusOr<std::vector<std::unique_ptr<LayerFfn>>> layers = BuildFfnLayers(*l.model, setup);
  ASSERT_TRUE(layers.ok()) << layers.status();
  ASSERT_TRUE(l.executor->SetFfnLayers(*std::move(layers)).ok());
}

TEST(SparseFfnTest, ExactGateFirstEqualsDenseOnTheReluModel) {
  test::Loaded l = test::LoadForTest(test::ConvertedModel(BundledModel::kReluLlama260K), 128);
  ASSERT_NE(l.session, nullptr);
  const std::vector<int32_t> tokens = l.tokenizer->Encode(kPrompt);
  const std::vector<float> dense_decode = AllLogits(l, tokens, 1);
  const std::vector<float> dense_batch = AllLogits(l, tokens, 64);
  uint64_t dense_bytes = 0;
  for (const FfnStats& s : Stats(l)) dense_bytes += s.weight_bytes;

  InstallExact(l, FiringOf(*l.model));
  ExpectSameLogits(AllLogits(l, tokens, 1), dense_decode, 1e-5);
  const std::vector<FfnStats> decode = Stats(l);
  ExpectSameLogits(AllLogits(l, tokens, 64), dense_batch, 1e-5);
  const int64_t n_ff = l.model->config().n_ff;
  uint64_t exact_bytes = 0;
  for (int64_t i = 0; i < l.model->n_layers(); ++i) {
    const FfnStats& s = decode[static_cast<size_t>(i)];
    EXPECT_GT(s.calls, 0);
    EXPECT_EQ(s.dense_calls, 0);
    // It computed the neurons that fire: the model's (low) density.
    EXPECT_GT(s.SelectedDensity(n_ff), 0.01);
    EXPECT_LT(s.SelectedDensity(n_ff), 0.9);
    EXPECT_EQ(s.computed, s.selected);
    // Gate rows for all, up and down for the selected: 1/3 + 2/3 x density of the dense bytes
    // (the layer's three matrices share a dtype and shape here).
    const double expected = (1.0 + 2.0 * s.SelectedDensity(n_ff)) / 3.0;
    const double dense = static_cast<double>(l.model->layer(i).FfnBytes()) * s.calls;
    EXPECT_NEAR(static_cast<double>(s.weight_bytes) / dense, expected, 0.02) << "layer " << i;
    exact_bytes += s.weight_bytes;
  }
  EXPECT_LT(exact_bytes, dense_bytes);
}

TEST(SparseFfnTest, ExactGateFirstGivesTheThresholdedSiluModel) {
  test::Loaded l = test::LoadForTest(test::ConvertedModel(BundledModel::kStories260K), 128);
  ASSERT_NE(l.session, nullptr);
  FiringThresholds firing = FiringOf(*l.model);
  firing.per_layer.assign(static_cast<size_t>(l.model->n_layers()), 0.05f);
  const std::vector<int32_t> tokens = l.tokenizer->Encode(kPrompt);
  // The thresholded model over all neurons: the oracle with every call on its dense fallback.
  InstallOracle(l, firing, 0.0);
  const std::vector<float> decode = AllLogits(l, tokens, 1);
  const std::vector<float> batch = AllLogits(l, tokens, 64);
  InstallExact(l, firing);
  ExpectSameLogits(AllLogits(l, tokens, 1), decode, 1e-5);
  ExpectSameLogits(AllLogits(l, tokens, 64), batch, 1e-5);
  double density = 0.0;
  for (const FfnStats& s : Stats(l)) {
    density += s.SelectedDensity(l.model->config().n_ff) / static_cast<double>(l.model->n_layers());
  }
  EXPECT_GT(density, 0.05);
  EXPECT_LT(density, 0.95);
}

TEST(SparseFfnTest, OracleReproducesTheThresholdedSiluModel) {
  test::Loaded l = test::LoadForTest(test::ConvertedModel(BundledModel::kStories260K), 128);
  ASSERT_NE(l.session, nullptr);
  ASSERT_FALSE(l.model->config().ffn_act.HasExactZeros());
  FiringThresholds firing = FiringOf(*l.model);
  firing.per_layer.assign(static_cast<size_t>(l.model->n_layers()), 0.05f);
  const std::vector<int32_t> tokens = l.tokenizer->Encode(kPrompt);

  // Crossover 0: every call takes the dense fallback, which applies the thresholds to all neurons.
  InstallOracle(l, firing, 0.0);
  const std::vector<float> thresholded = AllLogits(l, tokens, 1);
  for (const FfnStats& s : Stats(l)) EXPECT_EQ(s.dense_calls, s.calls);

  InstallOracle(l, firing);
  ExpectSameLogits(AllLogits(l, tokens, 1), thresholded, 1e-5);
  const int64_t n_ff = l.model->config().n_ff;
  double density = 0.0;
  for (const FfnStats& s : Stats(l)) {
    EXPECT_EQ(s.dense_calls, 0);
    density += s.SelectedDensity(n_ff) / static_cast<double>(l.model->n_layers());
  }
  EXPECT_GT(density, 0.05);
  EXPECT_LT(density, 0.95);  // the threshold did zero neurons out

  // ... and the thresholded model is not the original one.
  InstallDense(l);
  const std::vector<float> original = AllLogits(l, tokens, 1);
  double max_diff = 0.0;
  for (size_t i = 0; i < original.size(); ++i) {
    max_diff = std::max(max_diff, static_cast<double>(std::fabs(original[i] - thresholded[i])));
  }
  EXPECT_GT(max_diff, 1e-3);
}

TEST(SparseFfnTest, DenseFallbackTriggersAboveTheCrossover) {
  test::Loaded l = test::LoadForTest(test::ConvertedModel(BundledModel::kReluLlama260K), 128);
  ASSERT_NE(l.session, nullptr);
  const std::vector<int32_t> tokens = l.tokenizer->Encode(kPrompt);
  const int64_t n_ff = l.model->config().n_ff;

  // The densities the oracle selects, per layer, on one token at a time.
  InstallOracle(l, FiringOf(*l.model));
  AllLogits(l, tokens, 1);
  const int64_t layers = l.model->n_layers();
  std::vector<double> mean(layers), max(layers);
  const std::vector<FfnStats> probe = Stats(l);
  for (int64_t i = 0; i < layers; ++i) {
    const FfnStats& s = probe[i];
    mean[i] = s.SelectedDensity(n_ff);
    max[i] = static_cast<double>(s.max_selected) / n_ff;
    ASSERT_LT(max[i], 0.95);
  }

  // Every selection at least as dense as the crossover: all calls dense.
  InstallOracle(l, FiringOf(*l.model), 0.0);
  AllLogits(l, tokens, 1);
  for (const FfnStats& s : Stats(l)) EXPECT_EQ(s.dense_calls, s.calls);

  // Every selection sparser than the crossover: none.
  double highest = 0.0;
  for (int64_t i = 0; i < layers; ++i) highest = std::max(highest, max[i]);
  InstallOracle(l, FiringOf(*l.model), highest + 0.5 / n_ff);
  AllLogits(l, tokens, 1);
  for (const FfnStats& s : Stats(l)) EXPECT_EQ(s.dense_calls, 0);

  // Crossover at the layers' mean density: the calls above it fall back, those below do not
  // (the decision is per part and per call); the output is the same either way.
  double mean_density = 0.0;
  for (int64_t i = 0; i < layers; ++i) mean_density += mean[i] / static_cast<double>(layers);
  InstallOracle(l, FiringOf(*l.model), mean_density);
  const std::vector<float> mixed_logits = AllLogits(l, tokens, 1);
  int64_t dense_calls = 0, calls = 0;
  for (const FfnStats& s : Stats(l)) {
    dense_calls += s.dense_calls;
    calls += s.calls;
  }
  EXPECT_GT(dense_calls, 0);
  EXPECT_LT(dense_calls, calls);
  InstallDense(l);
  ExpectSameLogits(mixed_logits, AllLogits(l, tokens, 1), 1e-5);
}

TEST(SparseFfnTest, CostModelChoosesTheCheapestRows) {
  // 1 ms + 10 ms x density for one token, and 1 ms more per token and unit density in a batch;
  // the dense kernels: 10 ms, 0.5 ms more per token.
  FfnCostModel cost;
  FfnCostCurve c;
  c.dense_seconds = 10e-3;
  c.dense_per_token = 0.5e-3;
  c.sparse_base = 1e-3;
  c.sparse_slope = 10e-3;
  c.sparse_per_token = 1e-3;
  cost.curves.assign(2, c);
  EXPECT_NEAR(c.Sparse(0.5, 1), 6e-3, 1e-12);
  EXPECT_NEAR(c.Dense(3), 11e-3, 1e-12);
  // One token: sparse below the crossover (0.9), dense above it.
  EXPECT_EQ(cost.Choose(1, 100, 100, 1, 50, 50), RowChoice::kUnion);
  EXPECT_EQ(cost.Choose(1, 100, 100, 1, 95, 95), RowChoice::kAll);
  // A batch whose tokens share their neurons: the union reads them once.
  EXPECT_EQ(cost.Choose(1, 100, 100, 4, 20, 80), RowChoice::kUnion);
  // Tokens with disjoint 1% sets in a long batch, on a machine where the gathered rows cost
  // little to start and much per token of a batch: the union's compute costs more than each
  // token's own rows (0.64 x (10 + 63) ms against 64 x 0.01 + 0.64 x 10 ms).
  FfnCostModel compute_bound = cost;
  compute_bound.curves[1].sparse_base = 0.01e-3;
  compute_bound.curves[1].dense_per_token = 2e-3;
  EXPECT_EQ(compute_bound.Choose(1, 6400, 6400, 64, 4096, 4096), RowChoice::kPerToken);
  // A part of a quarter of the layer: "every neuron" is its quarter through the gathered rows,
  // as cheap as the selection when the selection is the whole part.
  EXPECT_EQ(cost.Choose(0, 100, 25, 1, 25, 25), RowChoice::kAll);
  EXPECT_EQ(cost.Choose(0, 100, 25, 1, 5, 5), RowChoice::kUnion);

  // Without curves: the fixed crossover on the union's density within the part.
  const FfnCostModel fixed = FfnCostModel::Fixed(0.5);
  EXPECT_EQ(fixed.Choose(0, 100, 100, 1, 49, 49), RowChoice::kUnion);
  EXPECT_EQ(fixed.Choose(0, 100, 100, 1, 50, 50), RowChoice::kAll);
  EXPECT_EQ(fixed.Choose(0, 100, 20, 3, 9, 12), RowChoice::kUnion);
  EXPECT_EQ(FfnCostModel::Fixed(0.5, RowChoice::kPerToken).Choose(0, 100, 20, 3, 9, 12),
            RowChoice::kPerToken);
}

TEST(SparseFfnTest, MeasuredCostModelCoversEveryLayer) {
  test::Loaded l = test::LoadForTest(test::ConvertedModel(BundledModel::kReluLlama260K), 64);
  ASSERT_NE(l.model, nullptr);
  absl::StatusOr<FfnCostModel> cost = MeasureFfnCostModel(*l.model);
  ASSERT_TRUE(cost.ok()) << cost.status();
  ASSERT_EQ(cost->curves.size(), static_cast<size_t>(l.model->n_layers()));
  const int64_t n_ff = l.model->config().n_ff;
  for (const FfnCostCurve& c : cost->curves) {
    EXPECT_GE(c.crossover, 0.0);
    EXPECT_LE(c.crossover, 1.0);
    EXPECT_GT(c.dense_seconds, 0.0);
    EXPECT_GE(c.dense_per_token, 0.0);
    EXPECT_GE(c.sparse_per_token, 0.0);
  }
  // Selecting every neuron never beats the dense kernels by more than timing noise allows: the
  // full selection picks the dense rows unless the model says gathered rows cost nothing extra.
  const FfnCostCurve& c0 = cost->curves[0];
  if (c0.Sparse(1.0, 1) > c0.Dense(1)) {
    EXPECT_EQ(cost->Choose(0, n_ff, n_ff, 1, n_ff, n_ff), RowChoice::kAll);
  }
  EXPECT_NE(cost->source.find("measured at load"), std::string::npos);
}

TEST(SparseFfnTest, CheckStatisticsMeasureTheSelection) {
  test::Loaded l = test::LoadForTest(test::ConvertedModel(BundledModel::kReluLlama260K), 128);
  ASSERT_NE(l.session, nullptr);
  const std::vector<int32_t> tokens = l.tokenizer->Encode(kPrompt);
  const int64_t n_ff = l.model->config().n_ff;

  InstallOracle(l, FiringOf(*l.model), 1.01, true);
  AllLogits(l, tokens, 1);
  for (const FfnStats& s : Stats(l)) {
    EXPECT_EQ(s.Recall(), 1.0);
    EXPECT_EQ(s.FalseNegativeMass(), 0.0);
    EXPECT_EQ(s.TrueDensity(n_ff), s.SelectedDensity(n_ff));
    EXPECT_GT(s.true_active, 0);
  }
  const std::vector<std::string> report = FfnReportLines(*l.executor);
  ASSERT_FALSE(report.empty());
  EXPECT_NE(report.back().find("check: all layers: "), std::string::npos) << report.back();
  EXPECT_NE(report.back().find("recall 1.0000"), std::string::npos) << report.back();

  Install(l,
          std::make_shared<test::HalfSelector>(
              std::make_shared<OracleSelector>(*l.model, FiringOf(*l.model))),
          FiringOf(*l.model), std::make_shared<const FfnCostModel>(FfnCostModel::Fixed(1.01)),
          true);
  AllLogits(l, tokens, 1);
  for (const FfnStats& s : Stats(l)) {
    EXPECT_NEAR(s.Recall(), 0.5, 0.05);
    EXPECT_GT(s.FalseNegativeMass(), 0.1);
    EXPECT_LT(s.FalseNegativeMass(), 0.9);
    EXPECT_NEAR(s.SelectedDensity(n_ff), s.TrueDensity(n_ff) / 2, 0.02);
  }
}

}  // namespace
}  // namespace pinfer
