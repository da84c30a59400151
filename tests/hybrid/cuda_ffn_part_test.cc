// The CUDA backend of a hybrid layer's GPU part against the dense CPU run, on a real GPU: the hot
// rows uploaded from a plan's partition, the prompt batch (gathered dense products) and decode
// (HotSparseFfn), with and without active sets. Skipped, with the reason, where there is no GPU or
// no CUDA build.
#include "runtime/exec/cuda_ffn_part.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "format/strings.h"
#include "gtest/gtest.h"
#include "runtime/exec/ffn_builder.h"
#include "tests/hybrid/hybrid_test_util.h"

namespace pinfer {
namespace {

using test::BundledModel;
using namespace hybrid_test;  // NOLINT

#define SKIP_WITHOUT_GPU()                                             \
  do {                                                                 \
    if (absl::Status s = CheckCudaAvailable(); !s.ok()) {              \
      GTEST_SKIP() << "no GPU for the CUDA FFN part: " << s.message(); \
    }                                                                  \
  } while (0)

// The GPU part's backend factory over a fresh context (with the device predictor when given).
GpuBackendFactory CudaFactory(const Model& model,
                              std::shared_ptr<const PredictorWeights> predictor = nullptr) {
  absl::StatusOr<std::shared_ptr<CudaFfnContext>> context = CreateCudaFfnContext(model);
  EXPECT_TRUE(context.ok()) << context.status();
  if (!context.ok()) return nullptr;
  return [context = *context, &model, predictor](int64_t layer, std::vector<int32_t> neurons) {
    return CreateCudaPartBackend(context, model, layer, std::move(neurons), predictor, -1.0f);
  };
}

TEST(CudaFfnPartTest, AvailabilityHasAReason) {
  const absl::Status s = CheckCudaAvailable();
  if (!CudaBackendBuilt()) {
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
    EXPECT_TRUE(absl::StrContains(s.message(), "no CUDA backend")) << s;
  } else if (!s.ok()) {
    EXPECT_FALSE(s.message().empty());
  }
}

class CudaFfnPartModelTest
    : public testing::TestWithParam<std::pair<BundledModel, std::optional<DType>>> {};

TEST_P(CudaFfnPartModelTest, PartitionsOnTheGpuGiveTheDenseLogits) {
  SKIP_WITHOUT_GPU();
  const std::unique_ptr<Model> model = LoadModel(GetParam().first, GetParam().second);
  ASSERT_NE(model, nullptr);
  const int64_t n_ff = model->config().n_ff;
  const std::vector<float> dense = RunLogits(*model);
  // The GPU keeps activations in f32 for mat-vec products but rounds them to f16 for the prompt
  // batch's cuBLAS products, and q8_0 models are not quantized to q8 there: a looser tolerance.
  const double tolerance = 2e-2;
  for (const auto& [name, partition] :
       {std::pair{"every neuron", EveryLayer(*model, AllNeurons(n_ff))},
        std::pair{"random half", RandomPartition(*model, 0.5, 1)},
        std::pair{"random 10%", RandomPartition(*model, 0.1, 2)}}) {
    const RunResult run = RunFfn(*model, Hybrid(partition, nullptr, nullptr, CudaFactory(*model)));
    EXPECT_EQ(run.stats.gpu_backend, "cuda");
    ExpectSameLogits(dense, run.logits, name, tolerance);
    EXPECT_GT(run.stats.gpu_seconds, 0.0) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(
    BundledModels, CudaFfnPartModelTest,
    testing::Values(std::pair{BundledModel::kStories260K, std::optional<DType>(DType::kF32)},
                    std::pair{BundledModel::kStories260K, std::optional<DType>(DType::kF16)},
                    std::pair{BundledModel::kReluLlama260K, std::optional<DType>()}),
    [](const auto& info) {
      return absl::StrCat(info.param.first == BundledModel::kStories260K ? "stories" : "relu", "_",
                          info.param.second ? Sv(DTypeName(*info.param.second)) : "native");
    });

TEST(CudaFfnPartTest, ActiveSetsOnTheGpuGiveTheDenseLogitsOfAReluModel) {
  SKIP_WITHOUT_GPU();
  const std::unique_ptr<Model> model = LoadModel(BundledModel::kReluLlama260K);
  ASSERT_NE(model, nullptr);
  const std::vector<float> dense = RunLogits(*model);
  auto oracle = CountingOracle(*model);
  const RunResult run =
      RunFfn(*model, Hybrid(RandomPartition(*model, 0.6, 4), oracle, nullptr, CudaFactory(*model)));
  ExpectSameLogits(dense, run.logits, "oracle active sets", 2e-2);
  const SplitStats& stats = run.stats;
  EXPECT_EQ(stats.gpu_neurons + stats.cpu_neurons, oracle->selected);
  EXPECT_GT(stats.HotCoverage(), 0.0);
}

TEST(CudaFfnPartTest, PredictorOnTheGpuSelectsLikeTheCpuOne) {
  SKIP_WITHOUT_GPU();
  const std::unique_ptr<Model> model = LoadModel(BundledModel::kStories260K, DType::kF16);
  ASSERT_NE(model, nullptr);
  std::shared_ptr<const PredictorWeights> predictor = RandomPredictor(*model, 21);
  const std::vector<std::vector<int32_t>> partition = RandomPartition(*model, 0.5, 3);
  // Reference: both parts on the CPU, the predictor on the CPU.
  const RunResult cpu =
      RunFfn(*model, Hybrid(partition, std::make_shared<PredictorSelector>(predictor)));
  // The GPU part runs its own copy of the predictor (the plan's predictor_on_gpu).
  const RunResult gpu =
      RunFfn(*model, Hybrid(partition, std::make_shared<PredictorSelector>(predictor), nullptr,
                            CudaFactory(*model, predictor)));
  // Neurons at the threshold may fall either way with the GPU's rounding: a loose tolerance.
  ExpectSameLogits(cpu.logits, gpu.logits, "GPU predictor", 5e-2);
  const double cpu_hot = static_cast<double>(cpu.stats.gpu_neurons);
  const double gpu_hot = static_cast<double>(gpu.stats.gpu_neurons);
  EXPECT_NEAR(gpu_hot, cpu_hot, 0.05 * cpu_hot);
  // The CPU part predicts on the CPU in both runs, from residuals that differ by that rounding.
  const double cpu_cold = static_cast<double>(cpu.stats.cpu_neurons);
  EXPECT_NEAR(static_cast<double>(gpu.stats.cpu_neurons), cpu_cold, 0.05 * cpu_cold);
}

TEST(CudaFfnPartTest, CalibratedThresholdsApplyOnTheGpu) {
  SKIP_WITHOUT_GPU();
  const std::unique_ptr<Model> model = LoadModel(BundledModel::kStories260K, DType::kF32);
  ASSERT_NE(model, nullptr);
  auto firing = std::make_shared<FiringThresholds>();
  firing->activation = model->config().ffn_act;
  firing->per_layer.assign(static_cast<size_t>(model->n_layers()), 0.05f);
  const std::vector<std::vector<int32_t>> partition = RandomPartition(*model, 0.5, 9);
  const std::vector<float> cpu = RunLogits(*model, Hybrid(partition, nullptr, firing));
  absl::StatusOr<std::shared_ptr<CudaFfnContext>> context = CreateCudaFfnContext(*model);
  ASSERT_TRUE(context.ok()) << context.status();
  GpuBackendFactory factory = [context = *context, &model](int64_t layer,
                                                           std::vector<int32_t> neurons) {
    return CreateCudaPartBackend(context, *model, layer, std::move(neurons), nullptr, 0.05f);
  };
  ExpectSameLogits(cpu, RunLogits(*model, Hybrid(partition, nullptr, firing, factory)),
                   "thresholds on the GPU", 2e-2);
}

}  // namespace
}  // namespace pinfer
