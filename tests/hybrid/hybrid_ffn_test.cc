// The hybrid FFN with two CPU parts (the "GPU" part a CpuFfnPart with its own partial, merged as
// the CUDA part merges) on the bundled real models: for any partition of the neurons the logits
// equal the dense run's, with and without an active-neuron selector; plans for another model are
// rejected.
#include "runtime/exec/hybrid_ffn.h"

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
#include "runtime/exec/session.h"
#include "runtime/exec/sparse_cost_model.h"
#include "runtime/exec/sparse_ffn.h"
#include "runtime/model/model.h"
#include "tests/hybrid/hybrid_test_util.h"
#include "tests/runtime/test_models.h"

namespace pinfer {
namespace {

using test::BundledModel;
using namespace hybrid_test;  // NOLINT

std::shared_ptr<HybridFfn> Hybrid(const Model& model,
                                  const std::vector<std::vector<int32_t>>& gpu_neurons,
                                  std::shared_ptr<NeuronSelector> selector = nullptr,
                                  std::shared_ptr<const FiringThresholds> firing = nullptr) {
  absl::StatusOr<std::shared_ptr<HybridFfn>> hybrid = BuildHybridFfn(
      model, gpu_neurons, /*gpu_factory=*/nullptr, std::move(selector), std::move(firing));
  EXPECT_TRUE(hybrid.ok()) << hybrid.status();
  return hybrid.ok() ? *hybrid : nullptr;
}

class HybridEqualsDenseTest
    : public testing::TestWithParam<std::pair<BundledModel, std::optional<DType>>> {};

TEST_P(HybridEqualsDenseTest, AnyPartitionGivesTheDenseLogits) {
  const std::unique_ptr<Model> model = LoadModel(GetParam().first, GetParam().second);
  ASSERT_NE(model, nullptr);
  const int64_t n_ff = model->config().n_ff;
  const std::vector<float> dense = RunLogits(*model, nullptr);
  // One backend: every neuron in the CPU part (the same gather kernels as every split below).
  const std::vector<float> one_backend = RunLogits(*model, Hybrid(*model, EveryLayer(*model, {})));
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
    std::shared_ptr<HybridFfn> hybrid = Hybrid(*model, c.gpu);
    ASSERT_NE(hybrid, nullptr) << c.name;
    ExpectSameLogits(one_backend, RunLogits(*model, hybrid), c.name, tolerance);
    const HybridFfnStats& stats = hybrid->stats();
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
    EXPECT_EQ(hybrid->gpu_backend(), gpu_layers > 0 ? "cpu" : "none") << c.name;
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
  const std::vector<float> dense = RunLogits(*model, nullptr);
  auto oracle = CountingOracle(*model);
  std::shared_ptr<HybridFfn> hybrid = Hybrid(*model, RandomPartition(*model, 0.4, 11), oracle);
  ExpectSameLogits(dense, RunLogits(*model, hybrid), "oracle active sets");
  const HybridFfnStats& stats = hybrid->stats();
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
  const std::vector<float> one_backend = RunLogits(
      *model, Hybrid(*model, EveryLayer(*model, {}), std::make_shared<RandomSelector>(n_ff)));
  const std::vector<float> gpu_only = RunLogits(
      *model,
      Hybrid(*model, EveryLayer(*model, AllNeurons(n_ff)), std::make_shared<RandomSelector>(n_ff)));
  const std::vector<float> split = RunLogits(
      *model,
      Hybrid(*model, RandomPartition(*model, 0.5, 5), std::make_shared<RandomSelector>(n_ff)));
  ExpectSameLogits(one_backend, gpu_only, "all on the GPU part");
  ExpectSameLogits(one_backend, split, "random split");
  // Half the neurons left out is not the dense FFN: the comparison above is not vacuous.
  const std::vector<float> dense = RunLogits(*model, nullptr);
  EXPECT_GT(MaxAbsDiff(dense, one_backend), 1e-2);
}

TEST(HybridSelectorTest, PredictorSelectionIsSplitExactly) {
  const std::unique_ptr<Model> model = LoadModel(BundledModel::kStories260K, DType::kF32);
  ASSERT_NE(model, nullptr);
  std::shared_ptr<const PredictorWeights> predictor = RandomPredictor(*model, 9);
  std::shared_ptr<HybridFfn> one =
      Hybrid(*model, EveryLayer(*model, {}), std::make_shared<PredictorSelector>(predictor));
  std::shared_ptr<HybridFfn> split = Hybrid(*model, RandomPartition(*model, 0.5, 6),
                                            std::make_shared<PredictorSelector>(predictor));
  const std::vector<float> one_logits = RunLogits(*model, one);
  ExpectSameLogits(one_logits, RunLogits(*model, split), "predictor, random split");
  // The predictor chose a real subset, the same in both runs.
  const int64_t all = 16 * model->n_layers() * model->config().n_ff;
  const int64_t computed = one->stats().cpu_neurons;
  EXPECT_GT(computed, all / 10);
  EXPECT_LT(computed, all * 9 / 10);
  EXPECT_EQ(split->stats().gpu_neurons + split->stats().cpu_neurons, computed);
  EXPECT_GT(MaxAbsDiff(RunLogits(*model, nullptr), one_logits), 1e-2);
}

TEST(HybridFfnTest, CalibratedThresholdsGiveTheSparseFfnsThresholdedModel) {
  const std::unique_ptr<Model> model = LoadModel(BundledModel::kStories260K, DType::kF32);
  ASSERT_NE(model, nullptr);
  ASSERT_FALSE(model->config().ffn_act.HasExactZeros());
  auto firing = std::make_shared<FiringThresholds>();
  firing->activation = model->config().ffn_act;
  firing->per_layer.assign(static_cast<size_t>(model->n_layers()), 0.05f);
  // The sparse FFN with every call on its dense fallback: the thresholded model over all neurons.
  SparseFfnOptions options;
  options.firing = *firing;
  options.cost = SparseCostModel::Fixed(model->n_layers(), 0.0);
  const std::vector<float> thresholded =
      RunLogits(*model, std::make_shared<SparseFfn>(
                            *model, std::make_shared<OracleSelector>(*model, *firing), options));

  // Every neuron, split in two CPU parts that both apply the thresholds.
  const std::vector<std::vector<int32_t>> partition = RandomPartition(*model, 0.5, 5);
  ExpectSameLogits(thresholded, RunLogits(*model, Hybrid(*model, partition, nullptr, firing)),
                   "every neuron, thresholded");
  // The oracle's selection of the thresholded model: the same model, fewer neurons computed.
  auto oracle =
      std::make_shared<CountingSelector>(std::make_shared<OracleSelector>(*model, *firing));
  std::shared_ptr<HybridFfn> selected = Hybrid(*model, partition, oracle, firing);
  ExpectSameLogits(thresholded, RunLogits(*model, selected), "oracle selection, thresholded");
  EXPECT_EQ(selected->stats().gpu_neurons + selected->stats().cpu_neurons, oracle->selected);
  EXPECT_LT(oracle->selected, 16 * model->n_layers() * model->config().n_ff * 95 / 100);

  // The thresholds matter: without them the split is the original model.
  EXPECT_GT(MaxAbsDiff(RunLogits(*model, Hybrid(*model, partition)), thresholded), 1e-3);
}

TEST(HybridFfnTest, DoesNotExposeActivations) {
  const std::unique_ptr<Model> model = LoadModel(BundledModel::kStories260K, DType::kF32);
  ASSERT_NE(model, nullptr);
  std::shared_ptr<HybridFfn> hybrid = Hybrid(*model, EveryLayer(*model, {1, 2}));
  FfnWorkspace ws;
  FfnCall call;
  call.need_activations = true;
  call.workspace = &ws;
  absl::StatusOr<FfnCallStats> r = hybrid->Forward(call);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(HybridFfnTest, RejectsBadPartitions) {
  const std::unique_ptr<Model> model = LoadModel(BundledModel::kStories260K, DType::kF32);
  ASSERT_NE(model, nullptr);
  const int32_t n_ff = static_cast<int32_t>(model->config().n_ff);
  for (const std::vector<int32_t>& bad : {std::vector<int32_t>{3, 2}, std::vector<int32_t>{1, 1},
                                          std::vector<int32_t>{n_ff}, std::vector<int32_t>{-1}}) {
    absl::StatusOr<std::shared_ptr<HybridFfn>> hybrid =
        BuildHybridFfn(*model, EveryLayer(*model, bad), nullptr, nullptr);
    EXPECT_EQ(hybrid.status().code(), absl::StatusCode::kInvalidArgument);
  }
  absl::StatusOr<std::shared_ptr<HybridFfn>> short_plan =
      BuildHybridFfn(*model, {{1}}, nullptr, nullptr);
  EXPECT_EQ(short_plan.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(HybridFfnTest, ComplementAndActiveRows) {
  EXPECT_EQ(ComplementNeurons(std::vector<int32_t>{1, 3, 4}, 6), (std::vector<int32_t>{0, 2, 5}));
  EXPECT_EQ(ComplementNeurons(std::vector<int32_t>{}, 3), (std::vector<int32_t>{0, 1, 2}));
  EXPECT_TRUE(ComplementNeurons(std::vector<int32_t>{0, 1, 2}, 3).empty());
  std::vector<int32_t> rows;
  ActiveRowsOfPart(std::vector<int32_t>{0, 2, 3, 5}, {1, 0, 0, 1, 1, 0}, rows);
  EXPECT_EQ(rows, (std::vector<int32_t>{0, 3}));
}

PlacementPlan PlanFor(const Model& model, std::vector<std::vector<int32_t>> gpu_neurons) {
  PlacementPlan plan;
  plan.model_digest = model.file().ContentDigestHex();
  plan.n_layers = model.n_layers();
  plan.n_ff = model.config().n_ff;
  plan.budget_bytes = 1 << 20;
  plan.group_size = 1;
  plan.objective = "coverage";
  plan.ffn_gpu_neurons = std::move(gpu_neurons);
  return plan;
}

TEST(HybridFfnTest, PlanForAnotherModelIsRejected) {
  const std::unique_ptr<Model> stories = LoadModel(BundledModel::kStories260K, DType::kF32);
  const std::unique_ptr<Model> relu = LoadModel(BundledModel::kReluLlama260K);
  ASSERT_NE(stories, nullptr);
  ASSERT_NE(relu, nullptr);
  EXPECT_TRUE(
      CheckPlanMatchesModel(PlanFor(*stories, EveryLayer(*stories, {})), *stories, "p.pi").ok());
  absl::Status other =
      CheckPlanMatchesModel(PlanFor(*relu, EveryLayer(*relu, {})), *stories, "p.pi");
  EXPECT_EQ(other.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(other.message(), "p.pi: was made for another model")) << other;
  PlacementPlan wrong_shape = PlanFor(*stories, EveryLayer(*stories, {}));
  wrong_shape.n_ff += 1;
  absl::Status shape = CheckPlanMatchesModel(wrong_shape, *stories, "p.pi");
  EXPECT_TRUE(absl::StrContains(shape.message(), "neurons")) << shape;
}

}  // namespace
}  // namespace pinfer
