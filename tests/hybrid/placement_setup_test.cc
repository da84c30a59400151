// The load step in process: a plan and a predictor beside the model resolved once
// (ResolveArtifacts), the GPU side chosen (SetUpGpuSide) and the hybrid layers built from them,
// and its errors.
#include "runtime/app/placement_setup.h"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "runtime/app/artifacts.h"
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

TEST(PlacementSetupTest, ResolvesThePlanAndThePredictorOnce) {
  // A ReLU model: its predictor needs no calibrated thresholds.
  const std::unique_ptr<Model> model = LoadModel(BundledModel::kReluLlama260K, DType::kF32);
  ASSERT_NE(model, nullptr);
  std::shared_ptr<const PredictorWeights> predictor = RandomPredictor(*model, 12);
  const std::string predictor_path = test::ScratchDir() + "/setup.predictor.pi";
  ASSERT_TRUE(predictor->Write(predictor_path).ok());
  const std::vector<std::vector<int32_t>> partition = RandomPartition(*model, 0.5, 8);
  PlacementFlags placement;
  placement.plan_path = WritePlan(*model, partition, "setup.plan.pi");
  placement.gpu_backend = "cpu";
  SparseFlags sparse;
  sparse.predictor_path = predictor_path;
  absl::StatusOr<RuntimeArtifacts> a = ResolveArtifacts(sparse, placement, model->path(), *model);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(a->plan.has_value());
  EXPECT_EQ(a->plan_path, placement.plan_path);
  ASSERT_NE(a->predictor, nullptr);
  EXPECT_EQ(a->predictor_path, predictor_path);
  EXPECT_TRUE(a->selects());
  absl::StatusOr<GpuSide> gpu =
      SetUpGpuSide(placement, *model, *a->plan, a->plan_path, a->predictor, a->firing);
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  // --gpu-backend cpu: the CPU stands in for the device.
  ASSERT_NE(gpu->placement.device, nullptr);
  EXPECT_EQ(gpu->placement.device->name(), "cpu stand-in");
  ASSERT_EQ(gpu->notes.size(), 2u);
  EXPECT_TRUE(absl::StrContains(gpu->notes[0], placement.plan_path)) << gpu->notes[0];
  EXPECT_TRUE(absl::StrContains(gpu->notes[1], "the CPU (--gpu-backend cpu)")) << gpu->notes[1];
  EXPECT_FALSE(absl::StrContains(gpu->notes[1], "no predictor")) << gpu->notes[1];

  // The plan's split with the predictor read from the file selects as the one built in memory.
  const RunResult from_files = RunFfn(
      *model, Hybrid(a->plan->ffn_gpu_neurons, std::make_shared<PredictorSelector>(a->predictor)));
  const RunResult direct =
      RunFfn(*model, Hybrid(partition, std::make_shared<PredictorSelector>(predictor)));
  ExpectSameLogits(direct.logits, from_files.logits, "setup");
  EXPECT_EQ(from_files.stats.gpu_neurons, direct.stats.gpu_neurons);
  EXPECT_GT(from_files.stats.gpu_neurons, 0);
}

TEST(PlacementSetupTest, RejectsAPredictorOfAnotherModel) {
  const std::unique_ptr<Model> stories = LoadModel(BundledModel::kStories260K, DType::kF32);
  const std::unique_ptr<Model> relu = LoadModel(BundledModel::kReluLlama260K);
  ASSERT_NE(stories, nullptr);
  ASSERT_NE(relu, nullptr);
  const std::string path = test::ScratchDir() + "/stories_for_relu.predictor.pi";
  ASSERT_TRUE(RandomPredictor(*stories, 1)->Write(path).ok());
  PlacementFlags placement;
  placement.plan_path = WritePlan(*relu, EveryLayer(*relu, {0, 1}), "shape.plan.pi");
  SparseFlags sparse;
  sparse.predictor_path = path;
  absl::StatusOr<RuntimeArtifacts> a = ResolveArtifacts(sparse, placement, relu->path(), *relu);
  EXPECT_EQ(a.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(a.status().message(), path)) << a.status();
  EXPECT_TRUE(absl::StrContains(a.status().message(), "another model")) << a.status();
}

TEST(PlacementSetupTest, NoPlanResolvesNone) {
  const std::unique_ptr<Model> model = LoadModel(BundledModel::kStories260K, DType::kF32);
  ASSERT_NE(model, nullptr);
  std::vector<std::string> notes;
  absl::StatusOr<std::optional<std::string>> path = ResolvePlanPath({}, *model, notes);
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_FALSE(path->has_value());
  absl::StatusOr<RuntimeArtifacts> a = ResolveArtifacts({}, {}, model->path(), *model);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_FALSE(a->plan.has_value());
  EXPECT_FALSE(a->selects());
}

TEST(PlacementSetupTest, CachedPlanNamesTheBudget) {
  EXPECT_EQ(CachedPlanPath("d/model.pi", uint64_t{8} << 30), "d/model.plan-8G.pi");
  EXPECT_EQ(CachedPlanPath("d/model.pi", uint64_t{1536} << 20), "d/model.plan-1536M.pi");
  EXPECT_EQ(CachedPlanPath("d/model.pi", 3900 << 10), "d/model.plan-3900K.pi");
  EXPECT_EQ(CachedPlanPath("d/model.pi", 1000), "d/model.plan-1000.pi");
}

// One line before allocating when the device has less free memory than the budget; none when it
// has enough or nothing is known of it (the CPU stand-in).
TEST(PlacementSetupTest, WarnsWhenTheDeviceHasLessFreeMemoryThanTheBudget) {
  const std::string line = DeviceMemoryWarning(uint64_t{1} << 30, uint64_t{2} << 30, "m.plan.pi");
  EXPECT_EQ(line,
            "warning: the GPU has 1.00 GiB free, less than the plan's budget of 2.00 GiB "
            "(m.plan.pi): allocating it may fail");
  EXPECT_EQ(DeviceMemoryWarning(uint64_t{2} << 30, uint64_t{2} << 30, "m.plan.pi"), "");
  EXPECT_EQ(DeviceMemoryWarning(std::nullopt, uint64_t{2} << 30, "m.plan.pi"), "");
}

}  // namespace
}  // namespace pinfer
