// PowerInfer interop end to end, on a PowerInfer GGUF fixture of stories260K with a random
// predictor (tests/export/powerinfer_fixture.h): pi-convert, pi-train-predictor --import, pi-run,
// pi-export --format powerinfer, and PowerInfer's activation files.
#include <cmath>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "format/mapped_file.h"
#include "format/pi_file.h"
#include "format/sample_file.h"
#include "gtest/gtest.h"
#include "runtime/cpu/predictor_kernel.h"
#include "runtime/model/activation_profile.h"
#include "runtime/model/model.h"
#include "runtime/model/predictor_weights.h"
#include "tests/export/export_test_util.h"
#include "tests/export/powerinfer_fixture.h"
#include "tools/convert/gguf_file.h"
#include "tools/convert/source_reader.h"

namespace pinfer::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kTrain[] = "pi-train-predictor";

// stories260K's weights with a PowerInfer predictor, as a PowerInfer GGUF at `path`.
void WriteFixture(const std::string& path, const PowerInferFixture& fixture) {
  absl::StatusOr<SourceModel> source =
      ReadSource(test::SourcePath("models/stories260K/stories260K.gguf"), {});
  ASSERT_TRUE(source.ok()) << source.status();
  WritePowerInferGguf(*source, fixture, path);
}

struct ParsedGguf {
  std::unique_ptr<MappedFile> file;
  std::unique_ptr<GgufFile> gguf;
};
ParsedGguf ParseGguf(const std::string& path) {
  ParsedGguf p;
  absl::StatusOr<std::unique_ptr<MappedFile>> file = MappedFile::Open(path);
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return p;
  p.file = *std::move(file);
  absl::StatusOr<GgufFile> gguf = GgufFile::Parse(p.file->bytes(), path);
  EXPECT_TRUE(gguf.ok()) << gguf.status();
  if (gguf.ok()) p.gguf = std::make_unique<GgufFile>(*std::move(gguf));
  return p;
}

class PowerInferInteropTest : public ::testing::Test {
 protected:
  // The fixture, its conversion, the imported predictor and the re-exported GGUF, once.
  static void SetUpTestSuite() {
    dir_ = new std::string((fs::path(test::ScratchDir()) / "powerinfer").string());
    fs::create_directories(*dir_);
    WriteFixture(Path("fixture.gguf"), {});
    test::ProgramResult r = PiConvert({Path("fixture.gguf"), "-o", Path("m.pi")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = PiTrainPredictor({"-m", Path("m.pi"), "--import", Path("fixture.gguf")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = PiExport({"-m", Path("m.pi"), "--format", "powerinfer", "-o", Path("export.gguf")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // FFN inputs x of every layer on the bundled text (f32, as the runtime computed them).
    r = PiProfile({"-m", Path("m.pi"), "--dataset", BundledText(), "--max-tokens", "160", "-t", "1",
                   "--samples", Path("m.samples.zst"), "--sample-dtype", "f32", "-q"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string Path(const std::string& name) { return (fs::path(*dir_) / name).string(); }

  static std::string* dir_;
};
std::string* PowerInferInteropTest::dir_ = nullptr;

// PowerInfer's decision (llama.cpp's llm_build_ffn_sparse, ggml.c's `idx < threshold` skip):
// neuron i active when (fc2 · relu(fc1 · h))_i >= t.
std::vector<bool> PowerInferDecision(const std::vector<float>& fc1, const std::vector<float>& fc2,
                                     int64_t rank, int64_t dim, int64_t n_ff,
                                     const std::vector<float>& h, float t) {
  std::vector<float> hidden(static_cast<size_t>(rank));
  for (int64_t r = 0; r < rank; ++r) {
    float s = 0;
    for (int64_t j = 0; j < dim; ++j) s += fc1[r * dim + j] * h[j];
    hidden[r] = std::max(s, 0.0f);
  }
  std::vector<bool> active(static_cast<size_t>(n_ff));
  for (int64_t i = 0; i < n_ff; ++i) {
    float z = 0;
    for (int64_t r = 0; r < rank; ++r) z += fc2[i * rank + r] * hidden[r];
    active[i] = z >= t;
  }
  return active;
}

TEST_F(PowerInferInteropTest, ImportThenExportKeepsWeightsAndEveryDecision) {
  ParsedGguf original = ParseGguf(Path("fixture.gguf"));
  ParsedGguf exported = ParseGguf(Path("export.gguf"));
  ASSERT_TRUE(original.gguf && exported.gguf);
  EXPECT_TRUE(exported.gguf->powerinfer_magic());
  EXPECT_EQ(exported.gguf->GetFloat("powerinfer.sparse_threshold").value_or(-1), 0.0);
  // Identical weights: every tensor, its type, shape and bytes (fc1 went through fc1/g and back).
  ASSERT_EQ(original.gguf->tensors().size(), exported.gguf->tensors().size());
  for (const GgufTensorInfo& t : original.gguf->tensors()) {
    const GgufTensorInfo* u = exported.gguf->FindTensor(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    EXPECT_EQ(t.ne, u->ne) << t.name;
    EXPECT_EQ(t.ggml_type, u->ggml_type) << t.name;
    const auto a = original.gguf->TensorData(t), b = exported.gguf->TensorData(*u);
    EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin(), b.end())) << t.name << " differs";
  }

  // Identical decisions for every neuron of every token of the bundled text: PowerInfer's on the
  // original and on the exported fc1/fc2, and pinfer's with the imported predictor. The samples
  // hold x = norm(h) = h / rms(h) ⊙ g; PowerInfer's input h is x / g up to the positive factor
  // rms(h), which no decision at threshold 0 depends on.
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(Path("m.pi"));
  ASSERT_TRUE(model.ok()) << model.status();
  absl::StatusOr<PredictorWeights> imported =
      PredictorWeights::ReadFor(Path("m.predictor.pi"), **model);
  ASSERT_TRUE(imported.ok()) << imported.status();
  absl::StatusOr<std::unique_ptr<SampleFileReader>> samples =
      SampleFileReader::Open(Path("m.samples.zst"));
  ASSERT_TRUE(samples.ok()) << samples.status();
  const ModelConfig& c = (*model)->config();
  int64_t decisions = 0, active = 0, mismatches = 0;
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string fc1 = absl::StrCat("blk.", l, ".fc1.weight");
    const std::string fc2 = absl::StrCat("blk.", l, ".fc2.weight");
    const std::vector<float> o1 = DecodeGgufTensor(*original.gguf, fc1);
    const std::vector<float> o2 = DecodeGgufTensor(*original.gguf, fc2);
    const std::vector<float> e1 = DecodeGgufTensor(*exported.gguf, fc1);
    const std::vector<float> e2 = DecodeGgufTensor(*exported.gguf, fc2);
    const int64_t rank = imported->layers[l].rank;
    ASSERT_EQ(rank, 32);
    const float* gain = (*model)->layer(l).ffn_norm;
    cpu::PredictorScratch scratch;
    cpu::PredictedActive ours;
    for (size_t frame : (*samples)->LayerFrames(l)) {
      absl::StatusOr<SampleBatch> batch = (*samples)->ReadFrame(frame);
      ASSERT_TRUE(batch.ok()) << batch.status();
      cpu::PredictActive(imported->View(l), batch->inputs.data(), batch->count, scratch, ours);
      for (int64_t t = 0; t < batch->count; ++t) {
        std::span<const float> x = batch->Input(t);
        std::vector<float> h(static_cast<size_t>(c.dim));
        for (int64_t j = 0; j < c.dim; ++j) h[j] = x[j] / gain[j];
        const std::vector<bool> want = PowerInferDecision(o1, o2, rank, c.dim, c.n_ff, h, 0.0f);
        const std::vector<bool> again = PowerInferDecision(e1, e2, rank, c.dim, c.n_ff, h, 0.0f);
        std::vector<bool> got(static_cast<size_t>(c.n_ff), false);
        for (int32_t i : ours.Token(t)) got[i] = true;
        for (int64_t i = 0; i < c.n_ff; ++i) {
          ++decisions;
          active += want[i];
          mismatches += (want[i] != got[i]) + (want[i] != again[i]);
        }
      }
    }
  }
  EXPECT_GT(decisions, 5 * 100 * c.n_ff);
  // A real decision: neither all active nor all inactive.
  EXPECT_GT(active, decisions / 5);
  EXPECT_LT(active, decisions * 4 / 5);
  EXPECT_EQ(mismatches, 0) << "of " << decisions << " decisions";
}

TEST_F(PowerInferInteropTest, PiRunWithTheReimportedPredictorGivesTheSameText) {
  // The exported GGUF back through pi-convert and --import: the same predictor, the same text.
  ASSERT_EQ(PiConvert({Path("export.gguf"), "-o", Path("again.pi")}).exit_code, 0);
  test::ProgramResult r =
      PiTrainPredictor({"-m", Path("again.pi"), "--import", Path("export.gguf"), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "\"exact\": true")) << r.out;
  absl::StatusOr<std::unique_ptr<PiFile>> a = PiFile::Open(Path("m.predictor.pi"));
  absl::StatusOr<std::unique_ptr<PiFile>> b = PiFile::Open(Path("again.predictor.pi"));
  ASSERT_TRUE(a.ok() && b.ok());
  ExpectSameTensors(**a, **b);

  auto text = [&](const std::string& model, const std::string& predictor) {
    test::ProgramResult run =
        PiRun({"-m", model, "--predictor", predictor, "--sparse-mode", "predictor", "-p",
               "Once upon a time", "-n", "32", "--temp", "0", "-t", "1"});
    EXPECT_EQ(run.exit_code, 0) << run.err;
    return run.out;
  };
  const std::string original = text(Path("m.pi"), Path("m.predictor.pi"));
  EXPECT_GT(original.size(), 40u) << original;
  EXPECT_EQ(text(Path("again.pi"), Path("again.predictor.pi")), original);
  // The predictor matters: dense decoding of the same model gives another text.
  test::ProgramResult dense = PiRun({"-m", Path("m.pi"), "--dense", "-p", "Once upon a time", "-n",
                                     "32", "--temp", "0", "-t", "1"});
  ASSERT_EQ(dense.exit_code, 0) << dense.err;
  EXPECT_NE(dense.out, original);
}

TEST_F(PowerInferInteropTest, ThresholdFromTheFileOrTheEnvironment) {
  WriteFixture(Path("t.gguf"), {.threshold = 0.25f});
  ASSERT_EQ(PiConvert({Path("t.gguf"), "-o", Path("t.pi")}).exit_code, 0);
  auto thresholds = [&](const std::string& predictor) {
    std::vector<float> out;
    absl::StatusOr<PredictorWeights> p = PredictorWeights::Read(predictor);
    EXPECT_TRUE(p.ok()) << p.status();
    if (p.ok()) {
      for (const PredictorLayer& layer : p->layers) out.push_back(layer.logit_threshold);
    }
    return out;
  };
  test::ProgramResult r = PiTrainPredictor({"-m", Path("t.pi"), "--import", Path("t.gguf")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "approximate")) << r.out;
  EXPECT_EQ(thresholds(Path("t.predictor.pi")), std::vector<float>(5, 0.25f));
  r = test::RunProgram("env", {"LLAMA_SPARSE_PRED_THRESHOLD=-0.5", PI_TRAIN_PREDICTOR_PATH, "-m",
                               Path("t.pi"), "--import", Path("t.gguf"), "-o", Path("env.pi")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(thresholds(Path("env.pi")), std::vector<float>(5, -0.5f));
  // Exported, the threshold is the file's key again.
  r = PiExport({"-m", Path("t.pi"), "--format", "powerinfer", "-o", Path("t.export.gguf")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "is not 0")) << r.out;
  ParsedGguf exported = ParseGguf(Path("t.export.gguf"));
  ASSERT_TRUE(exported.gguf);
  EXPECT_EQ(exported.gguf->GetFloat("powerinfer.sparse_threshold").value_or(-1), 0.25);
}

TEST_F(PowerInferInteropTest, BadPredictorsAreOneLineErrorsAndLeaveNothing) {
  struct Case {
    const char* name;
    PowerInferFixture fixture;
    const char* mention;
  };
  const Case cases[] = {
      {"narrow", {.fc1_dim = 32}, "expected fc1 [rank, 64]"},
      {"short", {.predictor_layers = 4}, "no tensor 'blk.4.fc1.weight'"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string gguf = Path(absl::StrCat(c.name, ".gguf"));
    const std::string model = Path(absl::StrCat(c.name, ".pi"));
    WriteFixture(gguf, c.fixture);
    ASSERT_EQ(PiConvert({gguf, "-o", model}).exit_code, 0);
    ExpectOneLineError(PiTrainPredictor({"-m", model, "--import", gguf}), kTrain, c.mention);
    EXPECT_FALSE(fs::exists(DefaultPredictorPath(model)));
  }
  // A plain llama.cpp GGUF has no predictors.
  const std::string plain = test::SourcePath("models/stories260K/stories260K.gguf");
  ExpectOneLineError(
      PiTrainPredictor({"-m", Path("m.pi"), "--import", plain, "-o", Path("plain.predictor.pi")}),
      kTrain, "not a PowerInfer GGUF");
  EXPECT_FALSE(fs::exists(Path("plain.predictor.pi")));
  // Another GGUF than the model's source.
  WriteFixture(Path("other.gguf"), {.seed = 2});
  ExpectOneLineError(PiTrainPredictor({"-m", Path("m.pi"), "--import", Path("other.gguf"), "-o",
                                       Path("other.predictor.pi")}),
                     kTrain, "was not converted from");
  EXPECT_FALSE(fs::exists(Path("other.predictor.pi")));
}

// PowerInfer's CPU sparse axpy reads ffn_down_t as f16 or q4_0 only: other dtypes become f16.
TEST_F(PowerInferInteropTest, ExportWritesFfnDownTInATypePowerInferReads) {
  test::ProgramResult r = PiExport(
      {"-m", Path("m.pi"), "--format", "powerinfer", "--dtype", "f32", "-o", Path("f32.gguf")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "sparse axpy reads f16 or q4_0 only")) << r.out;
  ParsedGguf exported = ParseGguf(Path("f32.gguf"));
  ASSERT_TRUE(exported.gguf);
  EXPECT_EQ(exported.gguf->FindTensor("blk.0.attn_q.weight")->ggml_type, 0u);      // F32
  EXPECT_EQ(exported.gguf->FindTensor("blk.0.ffn_down_t.weight")->ggml_type, 1u);  // F16
}

TEST_F(PowerInferInteropTest, ExportRefusesWhatPowerInferCannotHold) {
  // A predictor with biases (as pi-train-predictor trains by default).
  absl::StatusOr<PredictorWeights> p = PredictorWeights::Read(Path("m.predictor.pi"));
  ASSERT_TRUE(p.ok()) << p.status();
  std::vector<float> bias(p->layers[2].b2.begin(), p->layers[2].b2.end());
  bias[7] = 0.5f;
  p->layers[2].b2 = bias;
  ASSERT_TRUE(p->Write(Path("biased.predictor.pi")).ok());
  ExpectOneLineError(PiExport({"-m", Path("m.pi"), "--format", "powerinfer", "--predictor",
                               Path("biased.predictor.pi"), "-o", Path("biased.gguf")}),
                     "pi-export", "layer 2's predictor has biases");
  EXPECT_FALSE(fs::exists(Path("biased.gguf")));
  // A ReLU model is not a llama.cpp llama (SiLU); a norm ReLU is neither.
  ExpectOneLineError(PiExport({"-m", Path("m.pi"), "-o", Path("relu.gguf")}), "pi-export",
                     "llama.cpp's llama computes silu");
  EXPECT_FALSE(fs::exists(Path("relu.gguf")));
  const std::string relu = test::ConvertedModel(test::BundledModel::kReluLlama260K);
  ExpectOneLineError(PiExport({"-m", relu, "--format", "powerinfer", "-o", Path("n.gguf")}),
                     "pi-export", "after its norms");
  EXPECT_FALSE(fs::exists(Path("n.gguf")));
}

TEST_F(PowerInferInteropTest, ActivationFilesRoundTripAndWrongLayerCounts) {
  // pi-profile's counts -> activation_N.pt -> model.profile.pi again.
  ASSERT_EQ(PiProfile({"-m", Path("m.pi"), "--dataset", BundledText(), "--max-tokens", "300", "-t",
                       "1", "-o", Path("m.profile.pi"), "-q"})
                .exit_code,
            0);
  const std::string dir = Path("activation");
  test::ProgramResult r = PiTrainPredictor({"-m", Path("m.pi"), "--export-activations", dir});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (int l = 0; l < 5; ++l)
    EXPECT_TRUE(fs::exists(fs::path(dir) / absl::StrCat("activation_", l, ".pt")));
  EXPECT_FALSE(fs::exists(fs::path(dir) / "activation_5.pt"));
  absl::StatusOr<ActivationProfile> profiled = ActivationProfile::Read(Path("m.profile.pi"));
  ASSERT_TRUE(profiled.ok()) << profiled.status();
  r = PiTrainPredictor({"-m", Path("m.pi"), "--import-activations", dir, "-o", Path("imported.pi"),
                        "--activation-tokens", absl::StrCat(profiled->tokens)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  absl::StatusOr<ActivationProfile> imported = ActivationProfile::Read(Path("imported.pi"));
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->fire_count, profiled->fire_count);
  EXPECT_EQ(imported->tokens, profiled->tokens);
  EXPECT_GT(imported->LayerDensity(0), 0.0);
  // pi-place plans from it without a dataset.
  r = pinfer::testing::Run(PI_PLACE_PATH,
                           {"-m", Path("m.pi"), "--profile", Path("imported.pi"), "--predictor",
                            Path("m.predictor.pi"), "--vram", "3M", "-o", Path("m.plan.pi")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(Path("m.plan.pi")));
  // Without the token count, the largest count stands in for it.
  r = PiTrainPredictor({"-m", Path("m.pi"), "--import-activations", dir, "-o", Path("est.pi")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  absl::StatusOr<ActivationProfile> estimated = ActivationProfile::Read(Path("est.pi"));
  ASSERT_TRUE(estimated.ok());
  EXPECT_EQ(estimated->tokens,
            *std::max_element(profiled->fire_count.begin(), profiled->fire_count.end()));

  // Four files for five layers.
  fs::rename(fs::path(dir) / "activation_4.pt", Path("activation_4.pt"));
  ExpectOneLineError(
      PiTrainPredictor({"-m", Path("m.pi"), "--import-activations", dir, "-o", Path("four.pi")}),
      kTrain, "4 activation_<layer>.pt files");
  EXPECT_FALSE(fs::exists(Path("four.pi")));
  // (Each pi-train-predictor run loads LibTorch, about a second: the other bad files, a sixth
  // layer or a file that is no torch tensor, take the same paths and are left out.)
}

}  // namespace
}  // namespace pinfer::testing
