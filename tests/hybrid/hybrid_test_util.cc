#include "tests/hybrid/hybrid_test_util.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "format/quant.h"
#include "gtest/gtest.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/session.h"

namespace pinfer::hybrid_test {

std::unique_ptr<Model> LoadModel(test::BundledModel which, std::optional<DType> dtype) {
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(test::ConvertedModel(which, dtype));
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *std::move(model) : nullptr;
}

double SplitStats::HotCoverage() const {
  const int64_t total = gpu_neurons + cpu_neurons;
  return total > 0 ? static_cast<double>(gpu_neurons) / static_cast<double>(total) : 0.0;
}

FfnSetup Hybrid(std::vector<std::vector<int32_t>> gpu_neurons,
                std::shared_ptr<NeuronSelector> selector,
                std::shared_ptr<const FiringThresholds> firing, GpuBackendFactory gpu_backend) {
  FfnSetup setup;
  setup.gpu_neurons = std::move(gpu_neurons);
  setup.selector = std::move(selector);
  setup.firing = std::move(firing);
  setup.gpu_backend = std::move(gpu_backend);
  setup.cost =
      std::make_shared<const FfnCostModel>(FfnCostModel::Fixed(1.01, RowChoice::kPerToken));
  return setup;
}

RunResult RunFfn(const Model& model, const FfnSetup& setup) {
  RunResult result;
  Executor executor(model, {.batch_size = 16});
  absl::StatusOr<std::vector<std::unique_ptr<LayerFfn>>> layers = BuildFfnLayers(model, setup);
  EXPECT_TRUE(layers.ok()) << layers.status();
  if (!layers.ok()) return result;
  EXPECT_TRUE(executor.SetFfnLayers(*std::move(layers)).ok());
  // An f32 KV cache: the runs compared differ by the f32 order of the FFN sums (the bound the
  // tests hold them to), which an f16 cache could turn into different roundings of its keys.
  absl::StatusOr<std::unique_ptr<Session>> session =
      Session::Create(executor, {.context_length = 32, .cache_type = DType::kF32});
  EXPECT_TRUE(session.ok()) << session.status();
  if (!session.ok()) return result;
  const int64_t vocab = model.config().vocab_size;
  std::vector<int32_t> prompt;
  for (int i = 0; i < 12; ++i) prompt.push_back(static_cast<int32_t>((i * 37 + 1) % vocab));
  std::vector<float>& all = result.logits;
  absl::StatusOr<std::span<const float>> logits = (*session)->Evaluate(prompt, Logits::kAll);
  EXPECT_TRUE(logits.ok()) << logits.status();
  if (!logits.ok()) return result;
  all.assign(logits->begin(), logits->end());
  for (int i = 0; i < 4; ++i) {
    const int32_t token = static_cast<int32_t>((i * 53 + 7) % vocab);
    logits = (*session)->Evaluate(std::span<const int32_t>(&token, 1), Logits::kLast);
    EXPECT_TRUE(logits.ok()) << logits.status();
    if (!logits.ok()) return result;
    all.insert(all.end(), logits->begin(), logits->end());
  }
  SplitStats& s = result.stats;
  for (int64_t l = 0; l < executor.n_layers(); ++l) {
    const LayerFfn& layer = executor.ffn(l);
    s.layers.push_back(layer.Totals());
    if (l == 0) s.tokens = s.layers.back().tokens;
    for (const FfnPart& part : layer.parts()) {
      if (part.backend->asynchronous()) {
        s.gpu_neurons += part.stats.computed;
        s.synchronisations += part.stats.synchronisations;
        s.gpu_seconds += part.stats.seconds;
        s.gpu_backend = std::string(part.backend->device());
      } else {
        s.cpu_neurons += part.stats.computed;
      }
    }
  }
  return result;
}

std::vector<uint8_t> AttentionPattern(const Model& model, const std::string& which) {
  const size_t L = static_cast<size_t>(model.n_layers());
  std::vector<uint8_t> on(L, which == "all" ? 1 : 0);
  for (size_t l = 0; l < L; ++l) {
    if (which == "alternating") on[l] = l % 2;
  }
  if (which == "first") on.front() = 1;
  if (which == "last") on.back() = 1;
  return on;
}

PlacedRun RunPlaced(const Model& model, const std::vector<std::vector<int32_t>>& gpu_neurons,
                    const DenseSpec& spec) {
  PlacedRun result;
  std::shared_ptr<Backend> device =
      spec.device != nullptr ? spec.device : std::shared_ptr<Backend>(CpuBackend::StandIn());
  Executor executor(model, {.batch_size = 16});
  FfnSetup setup = Hybrid(gpu_neurons);
  if (!gpu_neurons.empty()) {
    setup.gpu_backend = spec.ffn_parts ? spec.ffn_parts(device)
                                       : StandInPartFactory(model, device, nullptr);
  }
  absl::StatusOr<std::vector<std::unique_ptr<LayerFfn>>> layers = BuildFfnLayers(model, setup);
  EXPECT_TRUE(layers.ok()) << layers.status();
  if (!layers.ok()) return result;
  EXPECT_TRUE(executor.SetFfnLayers(*std::move(layers)).ok());
  const absl::Status placed = executor.SetPlacement({device, spec.attention, spec.classifier});
  EXPECT_TRUE(placed.ok()) << placed;
  absl::StatusOr<std::unique_ptr<Session>> session =
      Session::Create(executor, {.context_length = 32, .cache_type = DType::kF16});
  EXPECT_TRUE(session.ok()) << session.status();
  if (!session.ok()) return result;
  const int64_t vocab = model.config().vocab_size;
  std::vector<int32_t> prompt;
  for (int i = 0; i < 12; ++i) prompt.push_back(static_cast<int32_t>((i * 37 + 1) % vocab));
  absl::StatusOr<std::span<const float>> logits = (*session)->Evaluate(prompt, Logits::kAll);
  EXPECT_TRUE(logits.ok()) << logits.status();
  if (!logits.ok()) return result;
  result.logits.assign(logits->begin(), logits->end());
  const Executor::TransferCounts before = executor.transfers();
  for (int i = 0; i < 4; ++i) {
    const int32_t token = static_cast<int32_t>((i * 53 + 7) % vocab);
    logits = (*session)->Evaluate(std::span<const int32_t>(&token, 1), Logits::kLast);
    EXPECT_TRUE(logits.ok()) << logits.status();
    if (!logits.ok()) return result;
    result.logits.insert(result.logits.end(), logits->begin(), logits->end());
  }
  const Executor::TransferCounts after = executor.transfers();
  result.transfers = {after.uploads - before.uploads, after.downloads - before.downloads,
                      after.synchronisations - before.synchronisations};
  for (int i = 0; i < 8; ++i) {
    const int32_t token =
        static_cast<int32_t>(std::max_element(logits->begin(), logits->end()) - logits->begin());
    result.greedy.push_back(token);
    logits = (*session)->Evaluate(std::span<const int32_t>(&token, 1), Logits::kLast);
    EXPECT_TRUE(logits.ok()) << logits.status();
    if (!logits.ok()) return result;
  }
  result.device_bytes = device->used();
  return result;
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

std::shared_ptr<const PredictorWeights> RandomPredictor(const Model& model, uint32_t seed) {
  struct Buffers {
    std::vector<std::vector<uint8_t>> matrices;
    std::vector<std::vector<float>> biases;
  };
  auto buffers = std::make_shared<Buffers>();
  const ModelConfig& c = model.config();
  constexpr int64_t kRank = 16;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto encode = [&](int64_t rows, int64_t cols) {
    std::vector<float> values(static_cast<size_t>(rows * cols));
    for (float& v : values) v = normal(rng);
    const uint64_t row_bytes = *RowBytes(DType::kF16, static_cast<uint64_t>(cols));
    std::vector<uint8_t> bytes(row_bytes * static_cast<uint64_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      EXPECT_TRUE(EncodeRow(values.data() + r * cols, static_cast<size_t>(cols), DType::kF16,
                            bytes.data() + static_cast<uint64_t>(r) * row_bytes)
                      .ok());
    }
    return bytes;
  };
  auto p = std::make_shared<PredictorWeights>();
  p->model_digest = model.file().ContentDigestHex();
  p->dim = c.dim;
  p->n_ff = c.n_ff;
  p->dtype = DType::kF16;
  p->target_recall = 0.99;
  p->fire_rule = "nonzero";
  buffers->matrices.reserve(static_cast<size_t>(2 * c.n_layers));
  buffers->biases.reserve(static_cast<size_t>(2 * c.n_layers));
  for (int64_t l = 0; l < c.n_layers; ++l) {
    PredictorLayer layer;
    layer.rank = kRank;
    layer.logit_threshold = 0.0f;  // W2 and b2 symmetric around 0: about half the neurons
    layer.threshold = SigmoidOf(0.0);
    buffers->matrices.push_back(encode(kRank, c.dim));
    layer.w1 = buffers->matrices.back();
    buffers->biases.push_back(std::vector<float>(kRank, 0.5f));
    layer.b1 = buffers->biases.back();
    buffers->matrices.push_back(encode(c.n_ff, kRank));
    layer.w2 = buffers->matrices.back();
    buffers->biases.push_back(std::vector<float>(static_cast<size_t>(c.n_ff), 0.0f));
    layer.b2 = buffers->biases.back();
    p->layers.push_back(layer);
  }
  p->storage = buffers;
  EXPECT_TRUE(p->Validate().ok()) << p->Validate();
  return p;
}

std::shared_ptr<CountingSelector> CountingOracle(const Model& model) {
  FiringThresholds exact_zeros;
  exact_zeros.activation = model.config().ffn_act;
  return std::make_shared<CountingSelector>(
      std::make_shared<OracleSelector>(model, std::move(exact_zeros)));
}

}  // namespace pinfer::hybrid_test
