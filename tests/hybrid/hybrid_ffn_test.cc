// A hybrid layer with two CPU parts (the "GPU" part a CPU backend with its own partial, merged as
// the CUDA part merges) on the bundled real models: for any partition of the neurons the logits
// equal the dense run's, with and without an active-neuron selector; --check and the dense
// fallback on every part; observers see the true activations; plans for another model are
// rejected.
#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "format/strings.h"
#include "gtest/gtest.h"
#include "runtime/cpu/kernels.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/ffn_builder.h"
#include "runtime/exec/ffn_cost_model.h"
#include "runtime/exec/layer_ffn.h"
#include "runtime/exec/session.h"
#include "runtime/model/model.h"
#include "runtime/model/placement_plan.h"
#include "tests/hybrid/hybrid_test_util.h"
#include "tests/runtime/half_selector.h"
#include "tests/runtime/test_models.h"

namespace pinfer {
namespace {

using test::BundledModel;
using namespace hybrid_test;  // NOLINT

class HybridEqualsDenseTest
    : public testing::TestWithParam<std::pair<BundledModel, std::optional<DType>>> {};

TEST_P(HybridEqualsDenseTest, AnyPartitionGivesTheDenseLogits) {
  const std::unique_ptr<Model> model = LoadModel(GetParam().first, GetParam().second);
  ASSERT_NE(model, nullptr);
  const int64_t n_ff = model->config().n_ff;
  const std::vector<float> dense = RunLogits(*model);
  // One backend: every neuron in the CPU part.
  const std::vector<float> one_backend = RunLogits(*model, Hybrid(EveryLayer(*model, {})));
  // Tight for float weights. With q8_0 weights the kernels round every activation vector to q8_0
  // before the next layer's products (kernels.h), a step function: a change in the last bit of a
  // sum (the parts add in another order) can move a value by one quantization step, ~1% of the
  // logits. Besides, the dense MatMul kernel rounds the FFN input to q8_0 while the gather kernels,
  // until their SIMD versions land, keep it in f32.
  const DType weights = model->layer(0).ffn_gate.dtype;
  const bool quantized = weights == DType::kQ8_0 || weights == DType::kQ4_0;
  const double tolerance = quantized ? 3e-2 : 2e-5;
  ExpectSameLogits(dense, one_backend, "one backend vs dense", tolerance);

  struct Case {
    std::string name;
    std::vector<std::vector<int32_t>> gpu;
    double coverage;  // expected hot coverage without a selector; < 0: not checked
  };
  std::vector<Case> cases = {
      {"empty GPU part", EveryLayer(*model, {}), 0.0},
      {"every neuron on the GPU", EveryLayer(*model, AllNeurons(n_ff)), 1.0},
      {"first neuron only", EveryLayer(*model, {0}), 1.0 / n_ff},
      {"random half", RandomPartition(*model, 0.5, 1), -1},
      {"random 10%", RandomPartition(*model, 0.1, 2), -1},
  };
  // Different per layer: all, none, a random third, then the last neuron only.
  std::vector<std::vector<int32_t>> mixed = RandomPartition(*model, 1.0 / 3, 3);
  mixed[0] = AllNeurons(n_ff);
  if (mixed.size() > 1) mixed[1].clear();
  if (mixed.size() > 3) mixed[3] = {static_cast<int32_t>(n_ff - 1)};
  cases.push_back({"different per layer", mixed, -1});

  for (const Case& c : cases) {
    const RunResult run = RunFfn(*model, Hybrid(c.gpu));
    ExpectSameLogits(one_backend, run.logits, c.name, tolerance);
    const SplitStats& stats = run.stats;
    EXPECT_EQ(stats.tokens, 16) << c.name;
    // Without a selector every neuron is computed once per token and layer.
    EXPECT_EQ(stats.gpu_neurons + stats.cpu_neurons, 16 * model->n_layers() * n_ff) << c.name;
    if (c.coverage >= 0) {
      EXPECT_NEAR(stats.HotCoverage(), c.coverage, 1e-12) << c.name;
    }
    int64_t gpu_layers = 0;
    for (const auto& layer : c.gpu) gpu_layers += !layer.empty();
    // One synchronisation per pass (1 prompt batch + 4 tokens) and layer with a GPU part.
    EXPECT_EQ(stats.synchronisations, 5 * gpu_layers) << c.name;
    EXPECT_EQ(stats.gpu_backend, gpu_layers > 0 ? "cpu" : "none") << c.name;
  }
}

INSTANTIATE_TEST_SUITE_P(
    BundledModels, HybridEqualsDenseTest,
    testing::Values(std::pair{BundledModel::kStories260K, std::optional<DType>(DType::kF32)},
                    std::pair{BundledModel::kStories260K, std::optional<DType>(DType::kQ8_0)},
                    std::pair{BundledModel::kReluLlama260K, std::optional<DType>()},
                    std::pair{BundledModel::kReluLlama260K, std::optional<DType>(DType::kF16)}),
    [](const auto& info) {
      return absl::StrCat(info.param.first == BundledModel::kStories260K ? "stories" : "relu", "_",
                          info.param.second ? Sv(DTypeName(*info.param.second)) : "native");
    });

// A random half of the neurons per call; the same sequence of sets in every run over the same
// calls.
class RandomSelector : public NeuronSelector {
 public:
  explicit RandomSelector(int64_t n_ff) : n_ff_(n_ff) {}
  std::string_view name() const override { return "random"; }
  uint64_t SelectBytes(int64_t) const override { return 0; }
  absl::Status Select(int64_t, const float*, int64_t n, FfnWorkspace&,
                      SelectedNeurons& active) override {
    active.Clear();
    std::vector<int32_t> ids;
    for (int64_t t = 0; t < n; ++t) {
      ids.clear();
      for (int32_t i = 0; i < n_ff_; ++i) {
        if (rng_() % 2 == 0) ids.push_back(i);
      }
      active.AddToken(ids);
    }
    return absl::OkStatus();
  }

 private:
  int64_t n_ff_;
  std::mt19937 rng_{7};
};

TEST(HybridSelectorTest, ExactActiveSetsOfAReluModelGiveTheDenseLogits) {
  // f16: the dense and the gather kernels both keep the activations in f32 (see above).
  const std::unique_ptr<Model> model = LoadModel(BundledModel::kReluLlama260K, DType::kF16);
  ASSERT_NE(model, nullptr);
  const std::vector<float> dense = RunLogits(*model);
  auto oracle = CountingOracle(*model);
  const RunResult run = RunFfn(*model, Hybrid(RandomPartition(*model, 0.4, 11), oracle));
  ExpectSameLogits(dense, run.logits, "oracle active sets");
  const SplitStats& stats = run.stats;
  // Only the active neurons were computed: a real ReLU model leaves most of them out.
  EXPECT_EQ(stats.gpu_neurons + stats.cpu_neurons, oracle->selected);
  EXPECT_LT(oracle->selected, 16 * model->n_layers() * model->config().n_ff * 3 / 4);
  EXPECT_GT(stats.HotCoverage(), 0.0);
  EXPECT_LT(stats.HotCoverage(), 1.0);
}

TEST(HybridSelectorTest, SplitEqualsOneBackendForTheSameActiveSets) {
  const std::unique_ptr<Model> model = LoadModel(BundledModel::kStories260K, DType::kF32);
  ASSERT_NE(model, nullptr);
  const int64_t n_ff = model->config().n_ff;
  const std::vector<float> one_backend =
      RunLogits(*model, Hybrid(EveryLayer(*model, {}), std::make_shared<RandomSelector>(n_ff)));
  const std::vector<float> gpu_only = RunLogits(
      *model, Hybrid(EveryLayer(*model, AllNeurons(n_ff)), std::make_shared<RandomSelector>(n_ff)));
  const std::vector<float> split = RunLogits(
      *model, Hybrid(RandomPartition(*model, 0.5, 5), std::make_shared<RandomSelector>(n_ff)));
  ExpectSameLogits(one_backend, gpu_only, "all on the GPU part");
  ExpectSameLogits(one_backend, split, "random split");
  // Half the neurons left out is not the dense FFN: the comparison above is not vacuous.
  const std::vector<float> dense = RunLogits(*model);
  EXPECT_GT(MaxAbsDiff(dense, one_backend), 1e-2);
}

TEST(HybridSelectorTest, PredictorSelectionIsSplitExactly) {
  const std::unique_ptr<Model> model = LoadModel(BundledModel::kStories260K, DType::kF32);
  ASSERT_NE(model, nullptr);
  std::shared_ptr<const PredictorWeights> predictor = RandomPredictor(*model, 9);
  const RunResult one = RunFfn(
      *model, Hybrid(EveryLayer(*model, {}), std::make_shared<PredictorSelector>(predictor)));
  const RunResult split = RunFfn(*model, Hybrid(RandomPartition(*model, 0.5, 6),
                                                std::make_shared<PredictorSelector>(predictor)));
  ExpectSameLogits(one.logits, split.logits, "predictor, random split");
  // The predictor chose a real subset, the same in both runs.
  const int64_t all = 16 * model->n_layers() * model->config().n_ff;
  const int64_t computed = one.stats.cpu_neurons;
  EXPECT_GT(computed, all / 10);
  EXPECT_LT(computed, all * 9 / 10);
  EXPECT_EQ(split.stats.gpu_neurons + split.stats.cpu_neurons, computed);
  EXPECT_GT(MaxAbsDiff(RunLogits(*model), one.logits), 1e-2);
}

TEST(HybridFfnTest, CalibratedThresholdsGiveTheSparseFfnsThresholdedModel) {
  const std::unique_ptr<Model> model = LoadModel(BundledModel::kStories260K, DType::kF32);
  ASSERT_NE(model, nullptr);
  ASSERT_FALSE(model->config().ffn_act.HasExactZeros());
  auto firing = std::make_shared<FiringThresholds>();
  firing->activation = model->config().ffn_act;
  firing->per_layer.assign(static_cast<size_t>(model->n_layers()), 0.05f);
  // Sparse execution with every call on its dense fallback: the thresholded model over all
  // neurons.
  FfnSetup fallback;
  fallback.selector = std::make_shared<OracleSelector>(*model, *firing);
  fallback.firing = firing;
  fallback.cost = std::make_shared<const FfnCostModel>(FfnCostModel::Fixed(0.0));
  const std::vector<float> thresholded = RunLogits(*model, fallback);

  // Every neuron, split in two CPU parts that both apply the thresholds.
  const std::vector<std::vector<int32_t>> partition = RandomPartition(*model, 0.5, 5);
  ExpectSameLogits(thresholded, RunLogits(*model, Hybrid(partition, nullptr, firing)),
                   "every neuron, thresholded");
  // The oracle's selection of the thresholded model: the same model, fewer neurons computed.
  auto oracle =
      std::make_shared<CountingSelector>(std::make_shared<OracleSelector>(*model, *firing));
  const RunResult selected = RunFfn(*model, Hybrid(partition, oracle, firing));
  ExpectSameLogits(thresholded, selected.logits, "oracle selection, thresholded");
  EXPECT_EQ(selected.stats.gpu_neurons + selected.stats.cpu_neurons, oracle->selected);
  EXPECT_LT(oracle->selected, 16 * model->n_layers() * model->config().n_ff * 95 / 100);

  // The thresholds matter: without them the split is the original model.
  EXPECT_GT(MaxAbsDiff(RunLogits(*model, Hybrid(partition)), thresholded), 1e-3);
}

// Records every layer's activations of every batch.
class ActivationRecorder : public ForwardObserver {
 public:
  void OnFfn(const FfnTrace& trace) override {
    activations.insert(activations.end(), trace.activations,
                       trace.activations + trace.n() * trace.n_ff);
  }
  std::vector<float> activations;
};

std::vector<float> ObservedActivations(const Model& model, const FfnSetup& setup) {
  Executor executor(model, {.batch_size = 16});
  absl::StatusOr<std::vector<std::unique_ptr<LayerFfn>>> layers = BuildFfnLayers(model, setup);
  EXPECT_TRUE(layers.ok()) << layers.status();
  if (!layers.ok()) return {};
  EXPECT_TRUE(executor.SetFfnLayers(*std::move(layers)).ok());
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(executor);
  EXPECT_TRUE(session.ok());
  if (!session.ok()) return {};
  ActivationRecorder recorder;
  (*session)->SetObserver(&recorder);
  const std::vector<int32_t> prompt = {1, 40, 77, 9, 300, 12};
  EXPECT_TRUE((*session)->Evaluate(prompt, Logits::kNone).ok());
  const int32_t next = 5;
  EXPECT_TRUE((*session)->Evaluate(std::span<const int32_t>(&next, 1)).ok());
  return recorder.activations;
}

TEST(HybridFfnTest, ObserversSeeTheTrueActivations) {
  const std::unique_ptr<Model> model = LoadModel(BundledModel::kReluLlama260K, DType::kF16);
  ASSERT_NE(model, nullptr);
  const std::vector<float> dense = ObservedActivations(*model, {});
  ASSERT_EQ(dense.size(), static_cast<size_t>(7 * model->n_layers() * model->config().n_ff));
  // A split with the oracle's (partial) selection still shows the observer every neuron.
  const std::vector<float> hybrid =
      ObservedActivations(*model, Hybrid(RandomPartition(*model, 0.5, 2), CountingOracle(*model)));
  ExpectSameLogits(dense, hybrid, "activations seen by the observer", 1e-4);
}

TEST(HybridFfnTest, CheckAndTheDenseFallbackWorkOnEveryPart) {
  const std::unique_ptr<Model> model = LoadModel(BundledModel::kReluLlama260K, DType::kF16);
  ASSERT_NE(model, nullptr);
  const std::vector<float> dense = RunLogits(*model);
  const int64_t n_ff = model->config().n_ff;
  // --check: the oracle's selection finds every firing neuron in both parts.
  FfnSetup checked = Hybrid(RandomPartition(*model, 0.5, 3), CountingOracle(*model));
  checked.check = true;
  const RunResult exact = RunFfn(*model, checked);
  ExpectSameLogits(dense, exact.logits, "oracle with --check");
  for (const FfnStats& s : exact.stats.layers) {
    EXPECT_GT(s.true_active, 0);
    EXPECT_EQ(s.Recall(), 1.0);
    EXPECT_EQ(s.FalseNegativeMass(), 0.0);
    EXPECT_EQ(s.TrueDensity(n_ff), s.SelectedDensity(n_ff));
  }
  // A selector that misses half of the firing neurons: caught, in both parts.
  FfnSetup half = Hybrid(RandomPartition(*model, 0.5, 3),
                         std::make_shared<test::HalfSelector>(CountingOracle(*model)));
  half.check = true;
  for (const FfnStats& s : RunFfn(*model, half).stats.layers) {
    EXPECT_NEAR(s.Recall(), 0.5, 0.08);
    EXPECT_GT(s.FalseNegativeMass(), 0.05);
  }
  // The dense fallback: a crossover of 0 sends every call of every selecting part to all of its
  // neurons, which is the dense FFN again even though the selector misses half.
  FfnSetup fallback = half;
  fallback.cost = std::make_shared<const FfnCostModel>(FfnCostModel::Fixed(0.0));
  const RunResult all = RunFfn(*model, fallback);
  ExpectSameLogits(dense, all.logits, "dense fallback on both parts");
  for (const FfnStats& s : all.stats.layers) {
    EXPECT_GT(s.calls, 0);
    EXPECT_EQ(s.dense_calls, s.calls);  // both parts, every call
  }
  EXPECT_EQ(all.stats.gpu_neurons + all.stats.cpu_neurons, 16 * model->n_layers() * n_ff);
}

TEST(HybridFfnTest, ExactCpuPartsSkipTheColdNeuronsThatDoNotFire) {
  const std::unique_ptr<Model> model = LoadModel(BundledModel::kReluLlama260K, DType::kF16);
  ASSERT_NE(model, nullptr);
  FfnSetup exact = Hybrid(RandomPartition(*model, 0.5, 4));
  exact.exact = true;
  const RunResult run = RunFfn(*model, exact);
  ExpectSameLogits(RunLogits(*model), run.logits, "gate-first parts");
  // Both parts (the GPU one stands in on the CPU) computed only the neurons that fire.
  EXPECT_GT(run.stats.gpu_neurons, 0);
  EXPECT_LT(run.stats.gpu_neurons + run.stats.cpu_neurons,
            16 * model->n_layers() * model->config().n_ff * 3 / 4);
  EXPECT_EQ(run.stats.synchronisations, 5 * model->n_layers());
}

TEST(HybridFfnTest, RejectsBadPartitions) {
  const std::unique_ptr<Model> model = LoadModel(BundledModel::kStories260K, DType::kF32);
  ASSERT_NE(model, nullptr);
  const int32_t n_ff = static_cast<int32_t>(model->config().n_ff);
  for (const std::vector<int32_t>& bad : {std::vector<int32_t>{3, 2}, std::vector<int32_t>{1, 1},
                                          std::vector<int32_t>{n_ff}, std::vector<int32_t>{-1}}) {
    absl::StatusOr<std::vector<std::unique_ptr<LayerFfn>>> layers =
        BuildFfnLayers(*model, Hybrid(EveryLayer(*model, bad)));
    EXPECT_EQ(layers.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(layers.status().message(), "layer 0")) << layers.status();
  }
  absl::StatusOr<std::vector<std::unique_ptr<LayerFfn>>> short_plan =
      BuildFfnLayers(*model, Hybrid({{1}}));
  EXPECT_EQ(short_plan.status().code(), absl::StatusCode::kInvalidArgument);
  // A part that selects needs a selector.
  FfnSetup no_selector;
  std::vector<FfnPart> parts(1);
  parts[0].neurons = AllNeurons(n_ff);
  parts[0].backend = std::make_unique<CpuPartBackend>(*model, 0, parts[0].neurons, false, nullptr);
  parts[0].selection = Selection::kPredicted;
  EXPECT_FALSE(BuildLayerFfn(*model, 0, std::move(parts), nullptr, nullptr, false).ok());
}

TEST(HybridFfnTest, Complement) {
  EXPECT_EQ(ComplementNeurons(std::vector<int32_t>{1, 3, 4}, 6), (std::vector<int32_t>{0, 2, 5}));
  EXPECT_EQ(ComplementNeurons(std::vector<int32_t>{}, 3), (std::vector<int32_t>{0, 1, 2}));
  EXPECT_TRUE(ComplementNeurons(std::vector<int32_t>{0, 1, 2}, 3).empty());
}

std::string WritePlan(const Model& model, const std::string& name, int64_t extra_n_ff = 0) {
  PlacementPlan plan;
  plan.model_digest = model.file().ContentDigestHex();
  plan.n_layers = model.n_layers();
  plan.n_ff = model.config().n_ff + extra_n_ff;
  plan.budget_bytes = 1 << 20;
  plan.group_size = 1;
  plan.objective = "coverage";
  const size_t layers = static_cast<size_t>(plan.n_layers);
  plan.ffn_gpu_neurons.assign(layers, {});
  plan.attention_on_gpu.assign(layers, 0);
  plan.min_share_neurons.assign(layers, 1);
  plan.ffn_gpu_coverage.assign(layers, 0.0f);
  plan.predictor_on_gpu.assign(layers, 0);
  const std::string path = test::ScratchDir() + "/" + name;
  const absl::Status written = plan.Write(path);
  EXPECT_TRUE(written.ok()) << written;
  return path;
}

TEST(HybridFfnTest, PlanForAnotherModelIsRejected) {
  const std::unique_ptr<Model> stories = LoadModel(BundledModel::kStories260K, DType::kF32);
  const std::unique_ptr<Model> relu = LoadModel(BundledModel::kReluLlama260K);
  ASSERT_NE(stories, nullptr);
  ASSERT_NE(relu, nullptr);
  const std::string own = WritePlan(*stories, "own.plan.pi");
  EXPECT_TRUE(PlacementPlan::ReadFor(own, *stories).ok());
  absl::StatusOr<PlacementPlan> other =
      PlacementPlan::ReadFor(WritePlan(*relu, "relu.plan.pi"), *stories);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(
      absl::StrContains(other.status().message(), "relu.plan.pi: was made for another model"))
      << other.status();
  absl::StatusOr<PlacementPlan> shape =
      PlacementPlan::ReadFor(WritePlan(*stories, "wide.plan.pi", 32), *stories);
  EXPECT_TRUE(absl::StrContains(shape.status().message(), "neurons")) << shape.status();
}

}  // namespace
}  // namespace pinfer
