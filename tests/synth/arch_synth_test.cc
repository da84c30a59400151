// pi-synth's OPT and Falcon models (bench/synth/README.md, "Gate-less FFNs: OPT and Falcon"): the
// tensors each architecture has, the planted thresholds where the construction puts them (OPT:
// fc1's f32 bias is exactly μ_i = Φ⁻¹(p_i) for relu; Falcon: the LayerNorms' bias channel),
// pi-run's greedy text dense and with exact gate-first selection (identical), and --gguf refused
// for them. (The firing frequencies are checked by synth_runtime_firing_test.cc for every
// architecture.)
#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "bench/synth/synth_design.h"
#include "bench/synth/synth_model.h"
#include "bench/synth/synth_random.h"
#include "format/pi_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/model/model.h"
#include "runtime/model/tensor_names.h"
#include "tests/model/opt_config_check.h"
#include "tests/runtime/test_models.h"
#include "tests/synth/synth_test_util.h"

namespace pinfer::synth::testing {
namespace {

namespace tn = tensor_names;
using ::testing::HasSubstr;

constexpr char kOptShape[] = "custom:d=256,ff=1024,layers=3,heads=4,vocab=512,ctx=512";
constexpr char kFalconShape[] = "custom:d=256,ff=1024,layers=3,heads=8,kv_heads=2,vocab=512";

const float* Tensor(const PiFile& file, const std::string& name, uint64_t count) {
  const TensorInfo* t = file.Find(name);
  EXPECT_NE(t, nullptr) << name;
  if (t == nullptr) return nullptr;
  EXPECT_EQ(t->dtype, DType::kF32) << name;
  EXPECT_EQ(t->size, count * sizeof(float)) << name;
  return file.DataAs<float>(*t);
}

TEST(ArchSynthTest, OptHasItsTensorsAndFc1BiasesHoldThePlantedThresholds) {
  ScratchDir scratch("arch_opt");
  SynthOptions options =
      SmallModelOptions(kOptShape, DType::kQ8_0, scratch.Path("opt.pi"), "", "opt");
  absl::StatusOr<SynthReport> report = WriteSyntheticModel(options);
  ASSERT_TRUE(report.ok()) << report.status();
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(options.output_path);
  ASSERT_TRUE(model.ok()) << model.status();
  const ModelConfig& c = (*model)->config();
  pinfer::testing::ExpectOptConfig(c);
  EXPECT_EQ(c.ffn_act.ToString(), "relu");
  EXPECT_EQ(report->parameters, options.shape.Parameters());

  absl::StatusOr<std::unique_ptr<PiFile>> file = PiFile::Open(options.output_path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->Find(tn::FfnUp(0)), nullptr);
  EXPECT_EQ((*file)->Find(tn::kOutput), nullptr);  // tied
  const TensorInfo* positions = (*file)->Find(tn::kPositionEmbedding);
  ASSERT_NE(positions, nullptr);
  EXPECT_EQ(positions->shape[0], 512u + 2);
  const TensorInfo* planted_info = (*file)->Find(kPlantedProbabilityTensor);
  ASSERT_NE(planted_info, nullptr);
  const float* planted = (*file)->DataAs<float>(*planted_info);
  const int64_t d = options.shape.dim, ff = options.shape.n_ff;
  for (int l = 0; l < options.shape.n_layers; ++l) {
    SCOPED_TRACE(::testing::Message() << "layer " << l);
    // relu fires where z > t_i = Φ⁻¹(1 - p_i): fc1's bias is -t_i = Φ⁻¹(p_i), to f32 rounding.
    const float* b1 = Tensor(**file, tn::FfnGateBias(l), static_cast<uint64_t>(ff));
    ASSERT_NE(b1, nullptr);
    for (int64_t i = 0; i < ff; ++i) {
      const double p = planted[l * ff + i];
      ASSERT_NEAR(b1[i], NormalQuantile(p), 1e-6 * (1 + std::fabs(NormalQuantile(p)))) << i;
    }
    // The biases that would add one vector to every residual are zero; q's and k's are not.
    for (const std::string& zero : {tn::AttnVBias(l), tn::AttnOutputBias(l), tn::FfnDownBias(l)}) {
      const float* v = Tensor(**file, zero, static_cast<uint64_t>(d));
      ASSERT_NE(v, nullptr);
      for (int64_t j = 0; j < d; ++j) ASSERT_EQ(v[j], 0.0f) << zero;
    }
    const float* bq = Tensor(**file, tn::AttnQBias(l), static_cast<uint64_t>(d));
    ASSERT_NE(bq, nullptr);
    double energy = 0;
    for (int64_t j = 0; j < d; ++j) energy += static_cast<double>(bq[j]) * bq[j];
    EXPECT_NEAR(std::sqrt(energy / static_cast<double>(d)), kProjectionBiasScale, 0.02);
  }
}

TEST(ArchSynthTest, FalconsLayerNormsCarryTheBiasChannel) {
  ScratchDir scratch("arch_falcon");
  SynthOptions options =
      SmallModelOptions(kFalconShape, DType::kQ4_0, scratch.Path("falcon.pi"), "", "falcon");
  absl::StatusOr<SynthReport> report = WriteSyntheticModel(options);
  ASSERT_TRUE(report.ok()) << report.status();
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(options.output_path);
  ASSERT_TRUE(model.ok()) << model.status();
  const ModelConfig& c = (*model)->config();
  EXPECT_EQ(c.architecture, "falcon");
  EXPECT_EQ(c.norm, NormKind::kLayer);
  EXPECT_EQ(c.positions, PositionKind::kRope);
  EXPECT_TRUE(c.parallel_attn);
  EXPECT_FALSE(c.ffn_gated);
  EXPECT_FALSE(c.biases);
  EXPECT_EQ(c.n_kv_heads, 2);
  EXPECT_EQ(c.ffn_act.ToString(), "relu");

  absl::StatusOr<std::unique_ptr<PiFile>> file = PiFile::Open(options.output_path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->Find(tn::FfnUp(0)), nullptr);
  EXPECT_EQ((*file)->Find(tn::FfnGateBias(0)), nullptr);
  const int64_t d = options.shape.dim;
  const double channel = std::sqrt(static_cast<double>(d) / 2) / std::sqrt(kBiasDims);
  for (int l = 0; l < options.shape.n_layers; ++l) {
    for (const auto& [weight_name, bias_name] : {std::pair{tn::AttnNorm(l), tn::AttnNormBias(l)},
                                                 std::pair{tn::FfnNorm(l), tn::FfnNormBias(l)}}) {
      const float* w = Tensor(**file, weight_name, static_cast<uint64_t>(d));
      const float* b = Tensor(**file, bias_name, static_cast<uint64_t>(d));
      ASSERT_TRUE(w != nullptr && b != nullptr);
      for (int64_t j = 0; j < d; ++j) {
        const bool band = j < kBiasDims;
        ASSERT_EQ(w[j], band ? 0.0f : 1.0f) << weight_name << " " << j;
        ASSERT_NEAR(b[j], band ? channel : 0.0, 1e-5) << bias_name << " " << j;
      }
    }
  }
}

std::string RunText(const std::string& model, const std::vector<std::string>& mode) {
  std::vector<std::string> args = {"-m", model, "-p", "One day, a little", "-n", "24", "--temp",
                                   "0",  "-t",  "1"};
  args.insert(args.end(), mode.begin(), mode.end());
  const test::ProgramResult r = test::RunProgram(PI_RUN_PATH, args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

TEST(ArchSynthTest, ExactSelectionGivesTheDenseTextForEveryArchitecture) {
  ScratchDir scratch("arch_exact");
  const struct {
    const char* arch;
    const char* shape;
    DType dtype;
  } cases[] = {{"opt", kOptShape, DType::kQ4_0},
               {"falcon", kFalconShape, DType::kQ8_0},
               {"llama", kFalconShape, DType::kQ4_0}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.arch);
    SynthOptions options =
        SmallModelOptions(c.shape, c.dtype, scratch.Path(std::string(c.arch) + ".pi"), "", c.arch);
    absl::StatusOr<SynthReport> report = WriteSyntheticModel(options);
    ASSERT_TRUE(report.ok()) << report.status();
    const std::string dense = RunText(options.output_path, {"--dense"});
    EXPECT_GT(dense.size(), std::string("One day, a little").size() + 8) << dense;
    EXPECT_EQ(RunText(options.output_path, {"--sparse-mode", "exact"}), dense);
  }
}

// The dense second moment that scales a GELU model's down rows, E[gelu(g)²] for g ~ N(μ, 1):
// at μ = 0 it has the closed form 1/3 + 1/(2π√3); far above zero gelu(g) = g, so 1 + μ²; elsewhere
// a seeded Monte Carlo estimate.
TEST(ArchSynthTest, GeluSecondMomentMatchesClosedFormsAndMonteCarlo) {
  EXPECT_NEAR(GeluSecondMoment(0.0), 1.0 / 3 + 1 / (2 * M_PI * std::sqrt(3.0)), 1e-9);
  EXPECT_NEAR(GeluSecondMoment(8.0), 1 + 64.0, 1e-6);
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal;
  for (double mu : {-2.0, -0.5, 1.0, 2.5}) {
    constexpr int kSamples = 400000;
    double sum = 0, sum_sq = 0;
    for (int k = 0; k < kSamples; ++k) {
      const double g = mu + normal(rng);
      const double v = g * NormalCdf(g) * g * NormalCdf(g);
      sum += v;
      sum_sq += v * v;
    }
    const double mean = sum / kSamples;
    const double sem = std::sqrt((sum_sq / kSamples - mean * mean) / kSamples);
    EXPECT_NEAR(GeluSecondMoment(mu), mean, 4 * sem) << "mu " << mu;
  }
}

// A GELU Falcon (--ffn-act gelu) has no exact zeros; its gates are planted so that |gelu(g)| >
// gelu(1) fires with p_i (mean 0.1). pi-profile calibrating each layer's τ for 90% sparsity on
// real text must then find τ near gelu(1) = 0.841 (the planted law on random tokens is checked by
// synth_runtime_firing_test.cc).
TEST(ArchSynthTest, PiProfileCalibratesAGeluFalconAtThePlantedThreshold) {
  ScratchDir scratch("arch_gelu");
  SynthOptions options =
      SmallModelOptions(kFalconShape, DType::kQ8_0, scratch.Path("gelu.pi"), "", "falcon");
  options.ffn_act = SynthActivation::kGeluErf;
  absl::StatusOr<SynthReport> report = WriteSyntheticModel(options);
  ASSERT_TRUE(report.ok()) << report.status();
  const test::ProgramResult r = test::RunProgram(
      PI_PROFILE_PATH,
      {"-m", options.output_path, "--dataset",
       test::SourcePath("tests/data/text/tinystories_valid_head.txt"), "--max-tokens", "3000", "-c",
       "128", "--target-sparsity", "0.9", "-t", "1", "-q", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json json = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(json.is_object() && json.contains("layers")) << r.out;
  EXPECT_EQ(json["activation"].get<std::string>(), "gelu_erf");
  const double planted_tau = 1.0 * NormalCdf(1.0);  // gelu(T), T = 1
  ASSERT_EQ(json["layers"].size(), 3u);
  for (const nlohmann::json& layer : json["layers"]) {
    EXPECT_NEAR(layer["threshold"].get<double>(), planted_tau, 0.08) << layer.dump();
  }
}

TEST(ArchSynthTest, GgufIsRefusedForOptAndFalconAndNoFileIsLeft) {
  ScratchDir scratch("arch_gguf");
  for (const char* arch : {"opt", "falcon"}) {
    SynthOptions options = SmallModelOptions(kOptShape, DType::kQ8_0, scratch.Path("m.pi"),
                                             scratch.Path("m.gguf"), arch);
    absl::StatusOr<SynthReport> report = WriteSyntheticModel(options);
    ASSERT_FALSE(report.ok()) << arch;
    EXPECT_THAT(report.status().message(), HasSubstr("llama architecture only"));
    EXPECT_THAT(report.status().message(), HasSubstr(std::string("'") + arch + "'"));
    EXPECT_TRUE(std::filesystem::is_empty(scratch.dir()));
  }
}

}  // namespace
}  // namespace pinfer::synth::testing
