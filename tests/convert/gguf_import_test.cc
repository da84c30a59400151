// GGUF import beyond the bundled files: F16/BF16 GGUFs (copied, even the transposed ffn_down, since
// half values survive f32 exactly), PowerInfer's sparse variants (activation, ffn_down_t,
// predictor tensors) and the activation rules.
#include <filesystem>

#include "format/pi_file.h"
#include "gtest/gtest.h"
#include "runtime/model/model_config.h"
#include "tests/convert/gguf_model.h"
#include "tests/convert/test_util.h"
#include "tools/convert/converter.h"
#include "tools/convert/source_reader.h"

namespace pinfer::testing {
namespace {

SourceModel Stories() {
  SourceOptions options;
  options.tokenizer_path = RepoPath("models/stories260K/tok512.bin");
  absl::StatusOr<SourceModel> m =
      ReadSource(RepoPath("models/stories260K/stories260K.bin"), options);
  EXPECT_TRUE(m.ok()) << m.status();
  return *std::move(m);
}

std::unique_ptr<PiFile> Convert(const std::string& source, const SourceOptions& options,
                                std::optional<DType> dtype, const std::string& out,
                                std::vector<std::string>* notes = nullptr) {
  absl::StatusOr<SourceModel> model = ReadSource(source, options);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return nullptr;
  if (notes) *notes = model->notes;
  ConvertOptions convert;
  convert.dtype = dtype;
  convert.progress = false;
  absl::StatusOr<ConvertReport> report = ConvertModel(*model, out, convert);
  EXPECT_TRUE(report.ok()) << report.status();
  auto file = PiFile::Open(out);
  EXPECT_TRUE(file.ok()) << file.status();
  return file.ok() ? *std::move(file) : nullptr;
}

std::vector<uint8_t> Bytes(const PiFile& f, const std::string& name) {
  auto d = f.Data(*f.Find(name));
  return {d.begin(), d.end()};
}

// A half-precision GGUF converts to exactly what the f32 model converts to at that dtype: blocks
// are copied, and ffn_down's decode-transpose-encode is lossless for f16/bf16 values.
TEST(GgufImport, HalfPrecisionGgufEqualsDirectConversion) {
  for (auto [ggml_type, dtype] : {std::pair{1u, DType::kF16}, std::pair{30u, DType::kBF16}}) {
    const std::string dir = ScratchDir(std::string(DTypeName(dtype)));
    SourceModel source = Stories();
    GgufModelOptions options;
    options.ggml_type = ggml_type;
    WriteFileBytes(dir + "/m.gguf", BuildLlamaGguf(source, options));
    auto from_gguf = Convert(dir + "/m.gguf", {}, std::nullopt, dir + "/a.pi");
    SourceOptions bin;
    bin.tokenizer_path = RepoPath("models/stories260K/tok512.bin");
    auto direct =
        Convert(RepoPath("models/stories260K/stories260K.bin"), bin, dtype, dir + "/b.pi");
    ASSERT_TRUE(from_gguf && direct);
    ASSERT_EQ(from_gguf->tensors().size(), direct->tensors().size());
    for (const TensorInfo& t : direct->tensors()) {
      ASSERT_NE(from_gguf->Find(t.name), nullptr) << t.name;
      EXPECT_EQ(from_gguf->Find(t.name)->dtype, t.dtype) << t.name;
      EXPECT_EQ(Bytes(*from_gguf, t.name), Bytes(*direct, t.name)) << t.name;
    }
  }
}

TEST(GgufImport, PowerInferSparseLlama) {
  const std::string dir = ScratchDir("pwri");
  SourceModel source = Stories();
  GgufModelOptions options;
  options.ggml_type = 8;  // Q8_0
  options.powerinfer = true;
  WriteFileBytes(dir + "/m.gguf", BuildLlamaGguf(source, options));
  std::vector<std::string> notes;
  auto pi = Convert(dir + "/m.gguf", {}, std::nullopt, dir + "/m.pi", &notes);
  ASSERT_TRUE(pi);
  auto config = ModelConfig::FromMetadata(pi->metadata());
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->ffn_act.ToString(), "relu");  // PowerInfer runs its sparse llamas with ReLU
  EXPECT_EQ(*pi->GetString("provenance.source_format"), "GGUF v3 (PowerInfer)");
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("ignored 10 PowerInfer predictor tensors"), std::string::npos)
      << notes[0];
  // ffn_down_t is already neuron-major: copied block for block, like the other matrices.
  auto q8 = Convert(dir + "/m.gguf", {}, DType::kQ8_0, dir + "/again.pi");
  SourceOptions bin;
  bin.tokenizer_path = RepoPath("models/stories260K/tok512.bin");
  auto direct = Convert(RepoPath("models/stories260K/stories260K.bin"), bin, DType::kQ8_0,
                        dir + "/direct.pi");
  ASSERT_TRUE(q8 && direct);
  for (const TensorInfo& t : direct->tensors()) {
    EXPECT_EQ(Bytes(*pi, t.name), Bytes(*direct, t.name)) << t.name;
    EXPECT_EQ(Bytes(*q8, t.name), Bytes(*direct, t.name)) << t.name;
  }
}

TEST(GgufImport, BambooIsDReluAndFlagsOverride) {
  const std::string dir = ScratchDir("bamboo");
  SourceModel source = Stories();
  GgufModelOptions options;
  options.arch = "bamboo";
  options.powerinfer = true;
  WriteFileBytes(dir + "/m.gguf", BuildLlamaGguf(source, options));
  auto pi = Convert(dir + "/m.gguf", {}, std::nullopt, dir + "/m.pi");
  ASSERT_TRUE(pi);
  EXPECT_EQ(ModelConfig::FromMetadata(pi->metadata())->ffn_act.ToString(), "drelu");
  // A flag wins over what the file implies (ProSparse GGUFs are fatrelu, PowerInfer says relu).
  SourceOptions flags;
  flags.activations.ffn_act = Activation{ActivationKind::kFatRelu, 0.01f};
  std::vector<std::string> notes;
  auto overridden = Convert(dir + "/m.gguf", flags, std::nullopt, dir + "/o.pi", &notes);
  ASSERT_TRUE(overridden);
  EXPECT_EQ(ModelConfig::FromMetadata(overridden->metadata())->ffn_act.ToString(), "fatrelu:0.01");
  EXPECT_NE(notes[0].find("--ffn-act fatrelu:0.01 overrides drelu (PowerInfer's bamboo"),
            std::string::npos)
      << notes[0];
}

TEST(GgufImport, PlainGgufIsSiluUnlessDeclared) {
  const std::string dir = ScratchDir("plain");
  std::vector<std::string> notes;
  auto pi = Convert(RepoPath("models/stories260K/stories260K.gguf"), {}, std::nullopt,
                    dir + "/m.pi", &notes);
  ASSERT_TRUE(pi);
  EXPECT_EQ(ModelConfig::FromMetadata(pi->metadata())->ffn_act.ToString(), "silu");
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("does not record the FFN activation"), std::string::npos);
  SourceOptions relu;
  relu.activations.ffn_act = Activation{ActivationKind::kRelu, 0};
  relu.activations.norm_act = Activation{ActivationKind::kShiftedRelu, 1.0f};
  auto declared = Convert(RepoPath("models/stories260K/stories260K.gguf"), relu, std::nullopt,
                          dir + "/r.pi", &notes);
  ASSERT_TRUE(declared);
  auto c = ModelConfig::FromMetadata(declared->metadata());
  EXPECT_EQ(c->ffn_act.ToString(), "relu");
  EXPECT_EQ(c->norm_act.ToString(), "shifted_relu:1");
  EXPECT_TRUE(notes.empty());
}

}  // namespace
}  // namespace pinfer::testing
