// Seeds of the model loader and of the artifact readers: the fixed model (fuzz/fixed_model.h),
// then a profile, a predictor, a plan and training samples made for it with the readers' own
// writers, each with the shapes and values the pipeline gives them (pi-profile, pi-train-predictor,
// pi-place and pi-profile --dump-samples write through the same functions).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>

#include "format/half.h"
#include "format/pi_file.h"
#include "format/quant.h"
#include "format/sample_file.h"
#include "runtime/model/activation_profile.h"
#include "runtime/model/placement_plan.h"
#include "runtime/model/predictor_weights.h"
#include "tests/convert/fuzz_corpus.h"
#include "tests/convert/test_util.h"
#include "tools/convert/converter.h"
#include "tools/convert/source_reader.h"

namespace pinfer::testing {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kLayers = 2, kDim = 32, kNff = 64;

void Check(const absl::Status& s) {
  if (s.ok()) return;
  std::fprintf(stderr, "make_fuzz_corpus: %s\n", std::string(s.message()).c_str());
  std::exit(1);
}

std::string MakeModel(const fs::path& fuzz_dir, const fs::path& tmp) {
  WriteFileBytes((tmp / "artifact.gguf").string(), TinyLlamaGguf(kLayers, kNff, true));
  absl::StatusOr<SourceModel> source = ReadSource((tmp / "artifact.gguf").string(), {});
  Check(source.status());
  ConvertOptions options;
  options.dtype = DType::kQ8_0;
  options.progress = false;
  options.command_line = "make_fuzz_corpus";
  const std::string path = (fuzz_dir / "data" / "artifact_model.pi").string();
  fs::create_directories(fuzz_dir / "data");
  Check(ConvertModel(*source, path, options).status());
  std::printf("%s\n", path.c_str());
  absl::StatusOr<std::unique_ptr<PiFile>> file = PiFile::Open(path);
  Check(file.status());
  WriteSeed(fuzz_dir / "corpus" / "model" / "artifact_model_q8_0.pi", ReadFileBytes(path));
  return (*file)->ContentDigestHex();
}

void WriteProfiles(const fs::path& corpus, const fs::path& tmp, const std::string& digest) {
  std::mt19937 rng(2);
  for (bool calibrated : {true, false}) {
    ActivationProfile p;
    p.model_digest = digest;
    p.n_layers = kLayers;
    p.n_ff = kNff;
    p.tokens = 200;
    p.context = 64;
    p.datasets = {"tinystories_valid_head.txt"};
    p.target_sparsity = calibrated ? 0.5 : -1.0;
    for (int64_t i = 0; i < kLayers * kNff; ++i) {
      p.fire_count.push_back(static_cast<int32_t>(rng() % 201));
      p.mean_abs.push_back(static_cast<float>(rng() % 1000) / 1000.0f);
    }
    p.threshold = calibrated ? std::vector<float>{0.05f, 0.125f} : std::vector<float>{0, 0};
    const std::string path = (tmp / "profile.pi").string();
    Check(p.Write(path));
    WriteSeed(corpus / "profile" / (calibrated ? "calibrated.pi" : "exact_zeros.pi"),
              ReadFileBytes(path));
  }
}

// Weights of `rows` x `cols` in `dtype` (f16 or q8_0).
std::vector<uint8_t> Weights(std::mt19937& rng, DType dtype, int64_t rows, int64_t cols) {
  std::normal_distribution<float> dist(0.0f, 0.1f);
  std::vector<float> x(static_cast<size_t>(rows * cols));
  for (float& v : x) v = dist(rng);
  if (dtype == DType::kQ8_0) {
    std::vector<uint8_t> out(x.size() / 32 * sizeof(BlockQ8_0));
    QuantizeRowQ8_0(x.data(), reinterpret_cast<BlockQ8_0*>(out.data()), x.size());
    return out;
  }
  std::vector<uint8_t> out(x.size() * 2);
  for (size_t i = 0; i < x.size(); ++i) {
    const uint16_t h = F32ToF16(x[i]);
    std::memcpy(out.data() + 2 * i, &h, 2);
  }
  return out;
}

void WritePredictors(const fs::path& corpus, const fs::path& tmp, const std::string& digest) {
  std::mt19937 rng(3);
  for (DType dtype : {DType::kF16, DType::kQ8_0}) {
    const int64_t rank = dtype == DType::kQ8_0 ? 32 : 16;
    PredictorWeights p;
    p.model_digest = digest;
    p.dim = kDim;
    p.n_ff = kNff;
    p.dtype = dtype;
    p.target_recall = 0.99;
    p.fire_rule = "threshold";
    auto storage = std::make_shared<std::vector<std::vector<uint8_t>>>();
    std::vector<std::vector<float>> biases;
    for (int64_t l = 0; l < kLayers; ++l) {
      storage->push_back(Weights(rng, dtype, rank, kDim));
      storage->push_back(Weights(rng, dtype, kNff, rank));
    }
    for (int64_t l = 0; l < kLayers; ++l) {
      biases.emplace_back(static_cast<size_t>(rank), 0.01f * static_cast<float>(l));
      biases.emplace_back(static_cast<size_t>(kNff), -0.5f);
    }
    for (int64_t l = 0; l < kLayers; ++l) {
      PredictorLayer layer;
      layer.rank = rank;
      layer.logit_threshold = -1.0f + static_cast<float>(l);
      layer.threshold = SigmoidOf(layer.logit_threshold);
      layer.w1 = (*storage)[2 * l];
      layer.w2 = (*storage)[2 * l + 1];
      layer.b1 = biases[2 * l];
      layer.b2 = biases[2 * l + 1];
      layer.report = {0.99, 0.5, 0.3, 0.2, 1000, 100};
      p.layers.push_back(layer);
    }
    p.storage = storage;
    const std::string path = (tmp / "predictor.pi").string();
    Check(p.Write(path));
    WriteSeed(corpus / "predictor" / (dtype == DType::kQ8_0 ? "q8_0.pi" : "f16.pi"),
              ReadFileBytes(path));
  }
}

void WritePlans(const fs::path& corpus, const fs::path& tmp, const std::string& digest) {
  for (bool split : {true, false}) {
    PlacementPlan p;
    p.model_digest = digest;
    p.n_layers = kLayers;
    p.n_ff = kNff;
    p.budget_bytes = 1 << 20;
    p.context = 64;
    p.batch = 8;
    p.group_size = 16;
    p.objective = split ? "latency" : "coverage";
    p.hardware = "h100-pcie";
    p.solver = split ? "cbc optimal" : "all fits";
    p.gpu_tensors = {"output_norm.weight", "blk.0.attn_norm.weight", "blk.0.ffn_norm.weight",
                     "blk.0.attn_q.weight", "output.weight"};
    p.bytes = {4096, 512, 16384, 8192, split ? 6528u : 13056u, 4096, 1088};
    p.expected_coverage = split ? 0.6 : 1.0;
    p.expected_latency_ms = 0.5;
    p.expected_gpu_ms = 0.2;
    p.expected_cpu_ms = 0.25;
    p.expected_sync_ms = 0.05;
    p.attention_on_gpu = {1, static_cast<uint8_t>(split ? 0 : 1)};
    p.min_share_neurons = {16, 16};
    p.ffn_gpu_coverage = {0.8f, split ? 0.0f : 1.0f};
    std::vector<int32_t> all(kNff), half;
    for (int32_t i = 0; i < kNff; ++i) all[i] = i;
    for (int32_t i = 0; i < kNff; i += 2) half.push_back(i);
    p.ffn_gpu_neurons = {half, split ? std::vector<int32_t>{} : all};
    p.predictor_on_gpu = {1, static_cast<uint8_t>(split ? 0 : 1)};
    const std::string path = (tmp / "plan.pi").string();
    Check(p.Write(path));
    WriteSeed(corpus / "plan" / (split ? "split.pi" : "all_gpu.pi"), ReadFileBytes(path));
  }
}

void WriteSamples(const fs::path& corpus, const fs::path& tmp, const std::string& digest) {
  std::mt19937 rng(4);
  std::normal_distribution<float> dist;
  for (DType dtype : {DType::kF16, DType::kF32}) {
    SampleFileSpec spec;
    spec.model_digest = digest;
    spec.n_layers = kLayers;
    spec.dim = kDim;
    spec.n_ff = kNff;
    spec.input_dtype = dtype;
    spec.extra.SetString("samples.fire_rule", dtype == DType::kF16 ? "threshold" : "nonzero");
    if (dtype == DType::kF16) spec.extra.SetFloatArray("samples.thresholds", {0.05f, 0.125f});
    spec.extra.SetInt("samples.sample_every", 4);
    SampleWriterOptions options;
    options.max_frame_samples = 6;  // several frames per layer, so that the index has order
    const std::string path = (tmp / "samples.zst").string();
    absl::StatusOr<std::unique_ptr<SampleFileWriter>> writer =
        SampleFileWriter::Create(path, spec, options);
    Check(writer.status());
    std::vector<float> input(kDim);
    std::vector<uint8_t> mask(static_cast<size_t>(SampleMaskBytes(kNff)));
    for (int token = 0; token < 16; ++token) {
      for (int64_t l = 0; l < kLayers; ++l) {
        for (float& v : input) v = dist(rng);
        for (uint8_t& b : mask) b = static_cast<uint8_t>(rng());
        Check((*writer)->Add(l, token % 8, input, mask));
      }
    }
    Check((*writer)->Commit());
    WriteSeed(corpus / "sample_file" / (dtype == DType::kF16 ? "f16.samples.zst" : "f32.samples.zst"),
              ReadFileBytes(path));
  }
}

}  // namespace

void WriteArtifactSeeds(const fs::path& fuzz_dir, const fs::path& tmp) {
  const std::string digest = MakeModel(fuzz_dir, tmp);
  const fs::path corpus = fuzz_dir / "corpus";
  WriteProfiles(corpus, tmp, digest);
  WritePredictors(corpus, tmp, digest);
  WritePlans(corpus, tmp, digest);
  WriteSamples(corpus, tmp, digest);
}

}  // namespace pinfer::testing
