// The CUDA part of the hybrid FFN against the dense CPU run, on a real GPU: the hot rows uploaded
// from a plan's partition, the prompt batch (gathered dense products) and decode (HotSparseFfn),
// with and without active sets. Skipped, with the reason, where there is no GPU or no CUDA build.
#include "runtime/exec/cuda_ffn_part.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "format/strings.h"
#include "gtest/gtest.h"
#include "runtime/exec/hybrid_ffn.h"
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

std::shared_ptr<HybridFfn> CudaHybrid(const Model& model,
                                      const std::vector<std::vector<int32_t>>& gpu_neurons,
                                      std::shared_ptr<NeuronSelector> selector = nullptr) {
  absl::StatusOr<std::shared_ptr<CudaFfnContext>> context = CreateCudaFfnContext(model);
  EXPECT_TRUE(context.ok()) << context.status();
  if (!context.ok()) return nullptr;
  GpuPartFactory factory = [context = *context, &model](int64_t layer,
                                                        std::vector<int32_t> neurons) {
    return CreateCudaFfnPart(context, model, layer, std::move(neurons));
  };
  absl::StatusOr<std::shared_ptr<HybridFfn>> hybrid =
      BuildHybridFfn(model, gpu_neurons, factory, std::move(selector));
  EXPECT_TRUE(hybrid.ok()) << hybrid.status();
  return hybrid.ok() ? *hybrid : nullptr;
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
  const std::vector<float> dense = RunLogits(*model, nullptr);
  // The GPU keeps activations in f32 for mat-vec products but rounds them to f16 for the prompt
  // batch's cuBLAS products, and q8_0 models are not quantized to q8 there: a looser tolerance.
  const double tolerance = 2e-2;
  for (const auto& [name, partition] :
       {std::pair{"every neuron", EveryLayer(*model, AllNeurons(n_ff))},
        std::pair{"random half", RandomPartition(*model, 0.5, 1)},
        std::pair{"random 10%", RandomPartition(*model, 0.1, 2)}}) {
    std::shared_ptr<HybridFfn> hybrid = CudaHybrid(*model, partition);
    ASSERT_NE(hybrid, nullptr);
    EXPECT_EQ(hybrid->gpu_backend(), "cuda");
    ExpectSameLogits(dense, RunLogits(*model, hybrid), name, tolerance);
    EXPECT_GT(hybrid->stats().gpu_seconds, 0.0) << name;
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
  const std::vector<float> dense = RunLogits(*model, nullptr);
  auto oracle = CountingOracle(*model);
  std::shared_ptr<HybridFfn> hybrid = CudaHybrid(*model, RandomPartition(*model, 0.6, 4), oracle);
  ASSERT_NE(hybrid, nullptr);
  ExpectSameLogits(dense, RunLogits(*model, hybrid), "oracle active sets", 2e-2);
  const HybridFfnStats& stats = hybrid->stats();
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
  absl::StatusOr<std::shared_ptr<HybridFfn>> cpu =
      BuildHybridFfn(*model, partition, nullptr, std::make_shared<PredictorSelector>(predictor));
  ASSERT_TRUE(cpu.ok());
  // The GPU part runs its own copy of the predictor (the plan's predictor_on_gpu).
  absl::StatusOr<std::shared_ptr<CudaFfnContext>> context = CreateCudaFfnContext(*model);
  ASSERT_TRUE(context.ok()) << context.status();
  GpuPartFactory factory = [context = *context, &model, predictor](int64_t layer,
                                                                   std::vector<int32_t> neurons) {
    return CreateCudaFfnPart(context, *model, layer, std::move(neurons), predictor);
  };
  absl::StatusOr<std::shared_ptr<HybridFfn>> gpu =
      BuildHybridFfn(*model, partition, factory, std::make_shared<PredictorSelector>(predictor));
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  // Neurons at the threshold may fall either way with the GPU's rounding: a loose tolerance.
  ExpectSameLogits(RunLogits(*model, *cpu), RunLogits(*model, *gpu), "GPU predictor", 5e-2);
  const double cpu_hot = static_cast<double>((*cpu)->stats().gpu_neurons);
  const double gpu_hot = static_cast<double>((*gpu)->stats().gpu_neurons);
  EXPECT_NEAR(gpu_hot, cpu_hot, 0.05 * cpu_hot);
  // The CPU part predicts on the CPU in both runs, from residuals that differ by that rounding.
  const double cpu_cold = static_cast<double>((*cpu)->stats().cpu_neurons);
  EXPECT_NEAR(static_cast<double>((*gpu)->stats().cpu_neurons), cpu_cold, 0.05 * cpu_cold);
}

}  // namespace
}  // namespace pinfer
