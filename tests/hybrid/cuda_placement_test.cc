// The plan's dense parts on a real GPU (the CUDA backend, cuda_backend.h), against the CPU: the
// device attention path with its f16 KV cache (prompt batches, decode, a context shift), and whole
// models on the GPU whose logits equal the dense CPU run within float tolerance with the same
// greedy text. Skipped without a device.
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/cpu/kernels.h"
#include "runtime/exec/cuda_backend.h"
#include "runtime/exec/cuda_ffn_part.h"
#include "runtime/exec/session.h"
#include "tests/hybrid/hybrid_test_util.h"
#include "tests/runtime/test_models.h"

namespace pinfer::hybrid_test {
namespace {

using test::BundledModel;

// The GPU's products round differently (cuBLAS on f16 activations for prompt batches, other sum
// orders): a looser bound than the CPU stand-in's, still far below a wrong result's.
constexpr double kGpuTolerance = 2e-3;

class CudaPlacementTest : public ::testing::TestWithParam<BundledModel> {
 protected:
  void SetUp() override {
    cpu::SetThreads(1);
    absl::StatusOr<std::shared_ptr<Backend>> device = CreateCudaBackend();
    if (!device.ok()) GTEST_SKIP() << "no GPU for the CUDA backend: " << device.status();
    device_ = *device;
    model_ = LoadModel(GetParam());
    ASSERT_NE(model_, nullptr);
  }

  // CUDA FFN parts on the test's device (its stream, its memory).
  std::function<GpuBackendFactory(std::shared_ptr<Backend>)> CudaParts() {
    const Model* model = model_.get();
    return [model](std::shared_ptr<Backend> device) -> GpuBackendFactory {
      std::shared_ptr<CudaFfnContext> context = *CreateCudaFfnContext(*model, device);
      return [context, model](int64_t layer, std::vector<int32_t> neurons) {
        return CreateCudaPartBackend(context, *model, layer, std::move(neurons), nullptr, -1.0f);
      };
    };
  }

  std::shared_ptr<Backend> device_;
  std::unique_ptr<Model> model_;
};

TEST_P(CudaPlacementTest, DeviceAttentionWithItsKvCacheMatchesTheCpu) {
  const PlacedRun dense = RunPlaced(*model_, {}, {});
  for (const std::string pattern : {"all", "alternating", "last"}) {
    const PlacedRun placed =
        RunPlaced(*model_, {}, {AttentionPattern(*model_, pattern), false, device_, nullptr});
    ExpectSameLogits(dense.logits, placed.logits, "attention " + pattern, kGpuTolerance);
    EXPECT_EQ(dense.greedy, placed.greedy) << pattern;
  }
}

TEST_P(CudaPlacementTest, WholeModelOnTheGpuGivesTheDenseLogitsAndText) {
  const PlacedRun dense = RunPlaced(*model_, {}, {});
  const std::vector<std::vector<int32_t>> whole =
      EveryLayer(*model_, AllNeurons(model_->config().n_ff));
  const PlacedRun placed =
      RunPlaced(*model_, whole, {AttentionPattern(*model_, "all"), true, device_, CudaParts()});
  ExpectSameLogits(dense.logits, placed.logits, "whole model", kGpuTolerance);
  EXPECT_EQ(dense.greedy, placed.greedy);
  // Only x up and the logits down per token.
  EXPECT_EQ(placed.transfers.uploads, placed.passes);
  EXPECT_EQ(placed.transfers.downloads, placed.passes);
}

TEST_P(CudaPlacementTest, HybridLayersOnTheGpuGiveTheDenseLogits) {
  const PlacedRun dense = RunPlaced(*model_, {}, {});
  const PlacedRun placed =
      RunPlaced(*model_, RandomPartition(*model_, 0.5, 4),
                {AttentionPattern(*model_, "alternating"), true, device_, CudaParts()});
  ExpectSameLogits(dense.logits, placed.logits, "hybrid", kGpuTolerance);
  EXPECT_EQ(dense.greedy, placed.greedy);
}

TEST_P(CudaPlacementTest, ContextShiftOfTheDeviceCache) {
  const int64_t vocab = model_->config().vocab_size;
  Executor dense(*model_, {.batch_size = 16});
  Executor placed(*model_, {.batch_size = 16});
  ASSERT_TRUE(placed.SetPlacement({device_, AttentionPattern(*model_, "all"), false}).ok());
  const SessionOptions options{.context_length = 32, .cache_type = DType::kF16};
  std::vector<int32_t> prompt;
  for (int i = 0; i < 20; ++i) prompt.push_back(static_cast<int32_t>((i * 29 + 3) % vocab));
  std::vector<std::vector<float>> runs;
  for (Executor* executor : {&dense, &placed}) {
    std::unique_ptr<Session> s = *Session::Create(*executor, options);
    ASSERT_TRUE(s->Evaluate(prompt).ok());
    ASSERT_TRUE(s->ShiftContext(4, 8).ok());
    std::vector<float> after;
    for (int i = 0; i < 3; ++i) {
      const int32_t token = static_cast<int32_t>((i * 17 + 5) % vocab);
      absl::StatusOr<std::span<const float>> logits =
          s->Evaluate(std::span<const int32_t>(&token, 1));
      ASSERT_TRUE(logits.ok()) << logits.status();
      after.insert(after.end(), logits->begin(), logits->end());
    }
    runs.push_back(after);
  }
  ExpectSameLogits(runs[0], runs[1], "after the context shift", kGpuTolerance);
}

INSTANTIATE_TEST_SUITE_P(BundledModels, CudaPlacementTest,
                         ::testing::Values(BundledModel::kStories260K,
                                           BundledModel::kReluLlama260K),
                         [](const auto& info) {
                           return info.param == BundledModel::kStories260K ? "stories260K"
                                                                           : "relu_llama_260k";
                         });

}  // namespace
}  // namespace pinfer::hybrid_test
