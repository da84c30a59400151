// SparseFfn against the dense FFN on the bundled real models:
//   - ReLU model, oracle selection (the true activations): exact zeros skipped give the same
//     logits as dense execution, for decode (one token per pass) and prompts (batch union);
//   - calibrated SiLU model: the oracle reproduces the thresholded model exactly;
//   - the cost model's fallback: a crossover below the layer's density sends every call to the
//     dense kernels, one above it none;
//   - --check statistics: exact for the oracle, and a selector that misses neurons is caught.
#include "runtime/exec/sparse_ffn.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/session.h"
#include "runtime/exec/sparse_cost_model.h"
#include "runtime/model/model.h"
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

std::shared_ptr<SparseFfn> InstallOracle(test::Loaded& l, FiringThresholds firing,
                                         double crossover = 1.01, bool check = false) {
  SparseFfnOptions options;
  options.firing = firing;
  options.cost = SparseCostModel::Fixed(l.model->n_layers(), crossover);
  options.check = check;
  auto sparse = std::make_shared<SparseFfn>(
      *l.model, std::make_shared<OracleSelector>(*l.model, firing), options);
  EXPECT_TRUE(l.executor->SetFfnForAllLayers(sparse).ok());
  return sparse;
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

  std::shared_ptr<SparseFfn> sparse = InstallOracle(l, FiringOf(*l.model));
  // Only the order of the float sums in the down projection differs from dense: 1e-5 of the
  // logits' scale.
  ExpectSameLogits(AllLogits(l, tokens, 1), dense_decode, 1e-5);
  ExpectSameLogits(AllLogits(l, tokens, 64), dense_batch, 1e-5);
  // And it really ran sparse: every call, at the model's (low) density.
  const int64_t n_ff = l.model->config().n_ff;
  for (const SparseLayerStats& s : sparse->stats()) {
    EXPECT_EQ(s.dense_calls, 0);
    EXPECT_GT(s.calls, 0);
    EXPECT_LT(s.SelectedDensity(n_ff), 0.9);
  }
}

TEST(SparseFfnTest, OracleReproducesTheThresholdedSiluModel) {
  test::Loaded l = test::LoadForTest(test::ConvertedModel(BundledModel::kStories260K), 128);
  ASSERT_NE(l.session, nullptr);
  ASSERT_FALSE(l.model->config().ffn_act.HasExactZeros());
  FiringThresholds firing = FiringOf(*l.model);
  firing.per_layer.assign(static_cast<size_t>(l.model->n_layers()), 0.05f);
  const std::vector<int32_t> tokens = l.tokenizer->Encode(kPrompt);

  // Crossover 0: every call takes the dense fallback, which applies the thresholds to all neurons.
  std::shared_ptr<SparseFfn> dense = InstallOracle(l, firing, 0.0);
  const std::vector<float> thresholded = AllLogits(l, tokens, 1);
  for (const SparseLayerStats& s : dense->stats()) EXPECT_EQ(s.dense_calls, s.calls);

  std::shared_ptr<SparseFfn> sparse = InstallOracle(l, firing);
  ExpectSameLogits(AllLogits(l, tokens, 1), thresholded, 1e-5);
  const int64_t n_ff = l.model->config().n_ff;
  double density = 0.0;
  for (const SparseLayerStats& s : sparse->stats()) {
    EXPECT_EQ(s.dense_calls, 0);
    density += s.SelectedDensity(n_ff) / static_cast<double>(sparse->stats().size());
  }
  EXPECT_GT(density, 0.05);
  EXPECT_LT(density, 0.95);  // the threshold did zero neurons out

  // ... and the thresholded model is not the original one.
  ASSERT_TRUE(l.executor->SetFfnForAllLayers(std::make_shared<DenseFfn>(*l.model)).ok());
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
  std::shared_ptr<SparseFfn> probe = InstallOracle(l, FiringOf(*l.model));
  AllLogits(l, tokens, 1);
  const int64_t layers = l.model->n_layers();
  std::vector<double> mean(layers), max(layers);
  for (int64_t i = 0; i < layers; ++i) {
    const SparseLayerStats& s = probe->stats()[i];
    mean[i] = s.SelectedDensity(n_ff);
    max[i] = static_cast<double>(s.max_selected) / n_ff;
    ASSERT_LT(max[i], 0.95);
  }

  // Every selection at least as dense as the crossover: all calls dense.
  std::shared_ptr<SparseFfn> low = InstallOracle(l, FiringOf(*l.model), 0.0);
  AllLogits(l, tokens, 1);
  for (const SparseLayerStats& s : low->stats()) EXPECT_EQ(s.dense_calls, s.calls);

  // Every selection sparser than the crossover: none.
  SparseFfnOptions options;
  options.firing = FiringOf(*l.model);
  options.cost = SparseCostModel::Fixed(layers, 0.0);
  for (int64_t i = 0; i < layers; ++i) options.cost.crossover[i] = max[i] + 0.5 / n_ff;
  auto high = std::make_shared<SparseFfn>(
      *l.model, std::make_shared<OracleSelector>(*l.model, FiringOf(*l.model)), options);
  ASSERT_TRUE(l.executor->SetFfnForAllLayers(high).ok());
  AllLogits(l, tokens, 1);
  for (const SparseLayerStats& s : high->stats()) EXPECT_EQ(s.dense_calls, 0);

  // Crossover at each layer's mean density: the calls above it fall back, those below do not
  // (the decision is per layer and per call); the output is the same either way.
  for (int64_t i = 0; i < layers; ++i) options.cost.crossover[i] = mean[i];
  auto mixed = std::make_shared<SparseFfn>(
      *l.model, std::make_shared<OracleSelector>(*l.model, FiringOf(*l.model)), options);
  ASSERT_TRUE(l.executor->SetFfnForAllLayers(mixed).ok());
  const std::vector<float> mixed_logits = AllLogits(l, tokens, 1);
  int64_t dense_calls = 0, calls = 0;
  for (const SparseLayerStats& s : mixed->stats()) {
    dense_calls += s.dense_calls;
    calls += s.calls;
  }
  EXPECT_GT(dense_calls, 0);
  EXPECT_LT(dense_calls, calls);
  ASSERT_TRUE(l.executor->SetFfnForAllLayers(std::make_shared<DenseFfn>(*l.model)).ok());
  ExpectSameLogits(mixed_logits, AllLogits(l, tokens, 1), 1e-5);
}

TEST(SparseFfnTest, CrossoverFromMeasurements) {
  CrossoverMeasurement m;
  m.dense_seconds = 10e-3;
  m.low_density = 0.1;
  m.low_seconds = 2e-3;
  m.high_density = 0.4;
  m.high_seconds = 5e-3;  // 1 ms + 10 ms x density
  EXPECT_NEAR(CrossoverDensity(m), 0.9, 1e-9);
  m.dense_seconds = 20e-3;  // sparse always wins: clamped
  EXPECT_EQ(CrossoverDensity(m), 1.0);
  m.dense_seconds = 0.5e-3;  // sparse never wins
  EXPECT_EQ(CrossoverDensity(m), 0.0);
  m.dense_seconds = 10e-3;  // noise: no growth with the density, sparse measured to win at 40%
  m.high_seconds = 1e-3;
  EXPECT_EQ(CrossoverDensity(m), 0.4);

  const SparseCostModel fixed = SparseCostModel::Fixed(3, 0.5);
  EXPECT_TRUE(fixed.UseSparse(2, 0.49));
  EXPECT_FALSE(fixed.UseSparse(2, 0.5));
}

TEST(SparseFfnTest, MeasuredCostModelCoversEveryLayer) {
  test::Loaded l = test::LoadForTest(test::ConvertedModel(BundledModel::kReluLlama260K), 64);
  ASSERT_NE(l.model, nullptr);
  absl::StatusOr<SparseCostModel> cost = MeasureSparseCostModel(*l.model);
  ASSERT_TRUE(cost.ok()) << cost.status();
  ASSERT_EQ(cost->crossover.size(), static_cast<size_t>(l.model->n_layers()));
  for (double c : cost->crossover) {
    EXPECT_GE(c, 0.0);
    EXPECT_LE(c, 1.0);
    EXPECT_FALSE(cost->UseSparse(0, 1.0));  // a full selection never runs sparse
  }
  ASSERT_FALSE(cost->measurements.empty());
  EXPECT_GT(cost->measurements[0].dense_seconds, 0.0);
  EXPECT_NE(cost->source.find("measured at load"), std::string::npos);
}

// Selects the oracle's neurons minus every other one: half the recall.
class HalfOracle : public NeuronSelector {
 public:
  HalfOracle(const Model& model, FiringThresholds firing) : oracle_(model, std::move(firing)) {}
  std::string_view name() const override { return "half-oracle"; }
  absl::Status Select(int64_t layer, const float* x, int64_t n, FfnWorkspace& ws,
                      SelectedNeurons& out) override {
    SelectedNeurons all;
    if (absl::Status s = oracle_.Select(layer, x, n, ws, all); !s.ok()) return s;
    out.Clear();
    for (int64_t t = 0; t < n; ++t) {
      const std::span<const int32_t> ids = all.Token(t);
      for (size_t i = 0; i < ids.size(); i += 2) out.ids.push_back(ids[i]);
      out.offsets.push_back(static_cast<int64_t>(out.ids.size()));
    }
    return absl::OkStatus();
  }
  uint64_t SelectBytes(int64_t) const override { return 0; }

 private:
  OracleSelector oracle_;
};

TEST(SparseFfnTest, CheckStatisticsMeasureTheSelection) {
  test::Loaded l = test::LoadForTest(test::ConvertedModel(BundledModel::kReluLlama260K), 128);
  ASSERT_NE(l.session, nullptr);
  const std::vector<int32_t> tokens = l.tokenizer->Encode(kPrompt);
  const int64_t n_ff = l.model->config().n_ff;

  std::shared_ptr<SparseFfn> exact = InstallOracle(l, FiringOf(*l.model), 1.01, true);
  AllLogits(l, tokens, 1);
  for (const SparseLayerStats& s : exact->stats()) {
    EXPECT_EQ(s.Recall(), 1.0);
    EXPECT_EQ(s.FalseNegativeMass(), 0.0);
    EXPECT_EQ(s.TrueDensity(n_ff), s.SelectedDensity(n_ff));
    EXPECT_GT(s.true_active, 0);
  }
  EXPECT_NE(FormatSparseReport(*exact, n_ff, true).find("recall 1.0000"), std::string::npos);

  SparseFfnOptions options;
  options.firing = FiringOf(*l.model);
  options.cost = SparseCostModel::Fixed(l.model->n_layers(), 1.01);
  options.check = true;
  auto half = std::make_shared<SparseFfn>(
      *l.model, std::make_shared<HalfOracle>(*l.model, FiringOf(*l.model)), options);
  ASSERT_TRUE(l.executor->SetFfnForAllLayers(half).ok());
  AllLogits(l, tokens, 1);
  for (const SparseLayerStats& s : half->stats()) {
    EXPECT_NEAR(s.Recall(), 0.5, 0.05);
    EXPECT_GT(s.FalseNegativeMass(), 0.1);
    EXPECT_LT(s.FalseNegativeMass(), 0.9);
    EXPECT_NEAR(s.SelectedDensity(n_ff), s.TrueDensity(n_ff) / 2, 0.02);
  }
}

}  // namespace
}  // namespace pinfer
