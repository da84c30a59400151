// SetUpPlacement in process: a plan and a predictor installed on an executor (the predictor's
// selection on the CPU part, and on the CUDA part where there is a GPU), and its errors.
#include "runtime/app/placement_setup.h"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "runtime/exec/executor.h"
#include "tests/hybrid/hybrid_test_util.h"

namespace pinfer {
namespace {

namespace fs = std::filesystem;
using test::BundledModel;
using namespace hybrid_test;  // NOLINT

std::string WritePlan(const Model& model, const std::vector<std::vector<int32_t>>& gpu_neurons,
                      const std::string& name) {
  PlacementPlan plan;
  plan.model_digest = model.file().ContentDigestHex();
  plan.n_layers = model.n_layers();
  plan.n_ff = model.config().n_ff;
  plan.budget_bytes = 1 << 20;
  plan.group_size = 1;
  plan.objective = "coverage";
  plan.ffn_gpu_neurons = gpu_neurons;
  const size_t L = static_cast<size_t>(plan.n_layers);
  plan.attention_on_gpu.assign(L, 0);
  plan.min_share_neurons.assign(L, 1);
  plan.ffn_gpu_coverage.assign(L, 0.5f);
  plan.predictor_on_gpu.assign(L, 0);
  for (size_t l = 0; l < L; ++l) plan.predictor_on_gpu[l] = !gpu_neurons[l].empty();
  const std::string path = (fs::path(test::ScratchDir()) / name).string();
  EXPECT_TRUE(plan.Write(path).ok());
  return path;
}

TEST(PlacementSetupTest, InstallsTheHybridFfnWithThePredictor) {
  const std::unique_ptr<Model> model = LoadModel(BundledModel::kStories260K, DType::kF32);
  ASSERT_NE(model, nullptr);
  std::shared_ptr<const PredictorWeights> predictor = RandomPredictor(*model, 12);
  const std::vector<std::vector<int32_t>> partition = RandomPartition(*model, 0.5, 8);
  PlacementFlags flags;
  flags.plan_path = WritePlan(*model, partition, "setup.plan.pi");
  flags.gpu_backend = "cpu";
  Executor executor(*model);
  absl::StatusOr<PlacementSetup> setup = SetUpPlacement(flags, *model, executor, predictor);
  ASSERT_TRUE(setup.ok()) << setup.status();
  ASSERT_NE(setup->hybrid, nullptr);
  EXPECT_EQ(executor.ffn(0).name(), "hybrid");
  EXPECT_EQ(setup->plan_path, flags.plan_path);
  ASSERT_EQ(setup->notes.size(), 2u);
  EXPECT_TRUE(absl::StrContains(setup->notes[1], "the CPU (--gpu-backend cpu)")) << setup->notes[1];
  EXPECT_FALSE(absl::StrContains(setup->notes[1], "no predictor")) << setup->notes[1];

  // The same as a hybrid FFN built directly over the partition with the predictor's selection.
  absl::StatusOr<std::shared_ptr<HybridFfn>> direct =
      BuildHybridFfn(*model, partition, nullptr, std::make_shared<PredictorSelector>(predictor));
  ASSERT_TRUE(direct.ok());
  ExpectSameLogits(RunLogits(*model, *direct), RunLogits(*model, setup->hybrid), "setup");
  EXPECT_EQ(setup->hybrid->stats().gpu_neurons, (*direct)->stats().gpu_neurons);
}

TEST(PlacementSetupTest, RejectsAPredictorOfAnotherShape) {
  const std::unique_ptr<Model> stories = LoadModel(BundledModel::kStories260K, DType::kF32);
  const std::unique_ptr<Model> relu = LoadModel(BundledModel::kReluLlama260K);
  ASSERT_NE(stories, nullptr);
  ASSERT_NE(relu, nullptr);
  PlacementFlags flags;
  flags.plan_path = WritePlan(*stories, EveryLayer(*stories, {0, 1}), "shape.plan.pi");
  Executor executor(*stories);
  absl::StatusOr<PlacementSetup> setup =
      SetUpPlacement(flags, *stories, executor, RandomPredictor(*relu, 1));
  EXPECT_EQ(setup.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(setup.status().message(), "does not fit")) << setup.status();
  EXPECT_EQ(executor.ffn(0).name(), "dense");
}

TEST(PlacementSetupTest, NoPlanLeavesTheExecutorDense) {
  const std::unique_ptr<Model> model = LoadModel(BundledModel::kStories260K, DType::kF32);
  ASSERT_NE(model, nullptr);
  Executor executor(*model);
  absl::StatusOr<PlacementSetup> setup = SetUpPlacement({}, *model, executor, nullptr);
  ASSERT_TRUE(setup.ok()) << setup.status();
  EXPECT_EQ(setup->hybrid, nullptr);
  EXPECT_EQ(executor.ffn(0).name(), "dense");
}

TEST(PlacementSetupTest, CachedPlanNamesTheBudget) {
  EXPECT_EQ(CachedPlanPath("d/model.pi", uint64_t{8} << 30), "d/model.plan-8G.pi");
  EXPECT_EQ(CachedPlanPath("d/model.pi", uint64_t{1536} << 20), "d/model.plan-1536M.pi");
  EXPECT_EQ(CachedPlanPath("d/model.pi", 3900 << 10), "d/model.plan-3900K.pi");
  EXPECT_EQ(CachedPlanPath("d/model.pi", 1000), "d/model.plan-1000.pi");
}

}  // namespace
}  // namespace pinfer
