#include "tests/hybrid/hybrid_test_util.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "gtest/gtest.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/session.h"

namespace pinfer::hybrid_test {

std::unique_ptr<Model> LoadModel(test::BundledModel which, std::optional<DType> dtype) {
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(test::ConvertedModel(which, dtype));
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *std::move(model) : nullptr;
}

std::vector<float> RunLogits(const Model& model, std::shared_ptr<FfnStrategy> ffn) {
  Executor executor(model, {.batch_size = 16});
  if (ffn != nullptr) {
    EXPECT_TRUE(executor.SetFfnForAllLayers(ffn).ok());
  }
  absl::StatusOr<std::unique_ptr<Session>> session =
      Session::Create(executor, {.context_length = 32});
  EXPECT_TRUE(session.ok()) << session.status();
  if (!session.ok()) return {};
  const int64_t vocab = model.config().vocab_size;
  std::vector<int32_t> prompt;
  for (int i = 0; i < 12; ++i) prompt.push_back(static_cast<int32_t>((i * 37 + 1) % vocab));
  std::vector<float> all;
  absl::StatusOr<std::span<const float>> logits = (*session)->Evaluate(prompt, Logits::kAll);
  EXPECT_TRUE(logits.ok()) << logits.status();
  if (!logits.ok()) return {};
  all.assign(logits->begin(), logits->end());
  for (int i = 0; i < 4; ++i) {
    const int32_t token = static_cast<int32_t>((i * 53 + 7) % vocab);
    logits = (*session)->Evaluate(std::span<const int32_t>(&token, 1), Logits::kLast);
    EXPECT_TRUE(logits.ok()) << logits.status();
    if (!logits.ok()) return {};
    all.insert(all.end(), logits->begin(), logits->end());
  }
  return all;
}

double MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]));
  }
  return worst;
}

double MaxAbs(const std::vector<float>& a) {
  double m = 0;
  for (float v : a) m = std::max(m, std::abs(static_cast<double>(v)));
  return m;
}

void ExpectSameLogits(const std::vector<float>& expected, const std::vector<float>& actual,
                      const std::string& what, double relative) {
  ASSERT_FALSE(expected.empty());
  const double tolerance = relative * std::max(1.0, MaxAbs(expected));
  EXPECT_LE(MaxAbsDiff(expected, actual), tolerance) << what;
}

std::vector<std::vector<int32_t>> EveryLayer(const Model& model,
                                             const std::vector<int32_t>& neurons) {
  return std::vector<std::vector<int32_t>>(static_cast<size_t>(model.n_layers()), neurons);
}

std::vector<int32_t> AllNeurons(int64_t n_ff) {
  std::vector<int32_t> ids(static_cast<size_t>(n_ff));
  for (int64_t i = 0; i < n_ff; ++i) ids[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  return ids;
}

std::vector<std::vector<int32_t>> RandomPartition(const Model& model, double p, uint32_t seed) {
  std::mt19937 rng(seed);
  std::bernoulli_distribution pick(p);
  std::vector<std::vector<int32_t>> layers(static_cast<size_t>(model.n_layers()));
  for (auto& layer : layers) {
    for (int32_t i = 0; i < model.config().n_ff; ++i) {
      if (pick(rng)) layer.push_back(i);
    }
  }
  return layers;
}

}  // namespace pinfer::hybrid_test
