// The "done when", on the real models bundled in models/: every model converts at its own
// dtype and at q8_0 and q4_0 with the real pi-convert; pi-inspect --verify passes on every output;
// the .bin and .gguf of stories260K give the same tensors and vocabulary; conversions are
// byte-identical when repeated; and llama.cpp's own Q8_0/Q4_0 GGUFs (tests/data/gguf) are imported
// bit for bit and match our quantizers byte for byte.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include "format/pi_file.h"
#include "format/quant.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/model/model_config.h"
#include "runtime/model/vocabulary.h"
#include "tests/convert/test_util.h"
#include "tools/convert/converter.h"
#include "tools/convert/gguf_file.h"
#include "tools/convert/source_reader.h"

namespace pinfer::testing {
namespace {

struct RealModel {
  const char* id;
  std::vector<std::string> args;  // source (and flags), repository-relative paths resolved
  DType own_dtype;
  const char* ffn_act;
  const char* norm_act;
};

const std::vector<RealModel>& Models() {
  static const std::vector<RealModel> models = {
      {"stories260K_bin",
       {RepoPath("models/stories260K/stories260K.bin"), "--tokenizer",
        RepoPath("models/stories260K/tok512.bin")},
       DType::kF32,
       "silu",
       "none"},
      {"stories260K_gguf",
       {RepoPath("models/stories260K/stories260K.gguf")},
       DType::kF32,
       "silu",
       "none"},
      {"relu_llama_260k",
       {RepoPath("models/relu-llama-260k/model_q80.bin"), "--tokenizer",
        RepoPath("models/relu-llama-260k/tok1024.bin"), "--ffn-act", "shifted_relu:0.25",
        "--norm-act", "shifted_relu:1.0"},
       DType::kQ8_0,
       "shifted_relu:0.25",
       "shifted_relu:1"},
  };
  return models;
}

// Converts with the library (the same code the tool runs) and opens the result.
std::unique_ptr<PiFile> ConvertWithLibrary(const std::string& source, const SourceOptions& options,
                                           std::optional<DType> dtype, const std::string& out) {
  absl::StatusOr<SourceModel> model = ReadSource(source, options);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return nullptr;
  ConvertOptions convert;
  convert.dtype = dtype;
  convert.progress = false;
  convert.command_line = "test";
  absl::StatusOr<ConvertReport> report = ConvertModel(*model, out, convert);
  EXPECT_TRUE(report.ok()) << report.status();
  absl::StatusOr<std::unique_ptr<PiFile>> file = PiFile::Open(out);
  EXPECT_TRUE(file.ok()) << file.status();
  return file.ok() ? *std::move(file) : nullptr;
}

double RelativeRmsError(const std::vector<float>& got, const std::vector<float>& want) {
  double err = 0, ref = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    err += (got[i] - want[i]) * (got[i] - want[i]);
    ref += want[i] * want[i];
  }
  return std::sqrt(err / std::max(ref, 1e-30));
}

class RealModelTest : public ::testing::TestWithParam<std::tuple<int, std::string>> {};

TEST_P(RealModelTest, ConvertsAndVerifies) {
  const RealModel& m = Models()[std::get<0>(GetParam())];
  const std::string dtype = std::get<1>(GetParam());
  const std::string dir = ScratchDir("out");
  const std::string out = dir + "/model.pi";
  std::vector<std::string> args = m.args;
  args.insert(args.end(), {"-o", out, "--json"});
  if (dtype != "own") args.insert(args.end(), {"--dtype", dtype});
  ToolResult convert = RunTool("pi-convert", args);
  ASSERT_EQ(convert.exit_code, 0) << convert.err;
  const nlohmann::json report = nlohmann::json::parse(convert.out);
  std::printf("[conversion] %-18s %-5s %9lld bytes %.3f s\n", m.id, dtype.c_str(),
              static_cast<long long>(report["bytes"].get<int64_t>()),
              report["seconds"].get<double>());
  RecordProperty("bytes", std::to_string(report["bytes"].get<int64_t>()));
  RecordProperty("seconds", std::to_string(report["seconds"].get<double>()));

  ToolResult verify = RunTool("pi-inspect", {"--verify", "-q", out});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_NE(verify.out.find("the file is sound"), std::string::npos);

  absl::StatusOr<std::unique_ptr<PiFile>> file = PiFile::Open(out, {ArtifactKind::kModel});
  ASSERT_TRUE(file.ok()) << file.status();
  absl::StatusOr<ModelConfig> config = ModelConfig::FromMetadata((*file)->metadata());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->ffn_act.ToString(), m.ffn_act);
  EXPECT_EQ(config->norm_act.ToString(), m.norm_act);
  ASSERT_TRUE(Vocabulary::FromMetadata((*file)->metadata()).ok());
  const DType expected = dtype == "own" ? m.own_dtype : *ParseDType(dtype);
  // The classifier of a q4_0 model stays at q8_0 (llama.cpp's Q4_0 keeps it at 6 bits).
  const std::string classifier = (*file)->Find("output") ? "output" : "token_embd";
  for (const TensorInfo& t : (*file)->tensors()) {
    const DType want = t.shape.size() == 1                         ? DType::kF32
                       : (dtype == "q4_0" && t.name == classifier) ? DType::kQ8_0
                                                                   : expected;
    EXPECT_EQ(t.dtype, want) << t.name;
  }

  // Quantized outputs stay close to the model's own values.
  if (dtype != "own") {
    const std::string reference = dir + "/reference.pi";
    std::vector<std::string> ref_args = m.args;
    ref_args.insert(ref_args.end(), {"-o", reference, "-q", "--dtype", "f32"});
    ASSERT_EQ(RunTool("pi-convert", ref_args).exit_code, 0);
    auto ref = PiFile::Open(reference);
    ASSERT_TRUE(ref.ok());
    for (const TensorInfo& t : (*file)->tensors()) {
      const double error =
          RelativeRmsError(DecodeTensor(**file, t.name), DecodeTensor(**ref, t.name));
      EXPECT_LT(error, dtype == "q8_0" ? 0.01 : 0.15) << t.name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllModelsAllDtypes, RealModelTest,
                         ::testing::Combine(::testing::Values(0, 1, 2),
                                            ::testing::Values("own", "q8_0", "q4_0")),
                         [](const auto& info) {
                           return std::string(Models()[std::get<0>(info.param)].id) + "_" +
                                  std::get<1>(info.param);
                         });

TEST(RealModels, BinAndGgufOfStoriesAgree) {
  const std::string dir = ScratchDir("agree");
  SourceOptions bin_options;
  bin_options.tokenizer_path = RepoPath("models/stories260K/tok512.bin");
  auto bin = ConvertWithLibrary(RepoPath("models/stories260K/stories260K.bin"), bin_options,
                                DType::kF32, dir + "/bin.pi");
  auto gguf = ConvertWithLibrary(RepoPath("models/stories260K/stories260K.gguf"), {}, DType::kF32,
                                 dir + "/gguf.pi");
  ASSERT_TRUE(bin && gguf);

  // Tensors: the .bin ties the classifier to the embedding, the GGUF stores it as output.
  int exact = 0, compared = 0;
  for (const TensorInfo& t : bin->tensors()) {
    const std::vector<float> a = DecodeTensor(*bin, t.name);
    const std::vector<float> b = DecodeTensor(*gguf, t.name);
    ASSERT_EQ(a.size(), b.size()) << t.name;
    ASSERT_EQ(gguf->Find(t.name)->shape, t.shape) << t.name;
    bool same = true;
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_NEAR(a[i], b[i], 1e-6f * std::max(1.0f, std::fabs(a[i]))) << t.name << "[" << i << "]";
      same &= a[i] == b[i];
    }
    exact += same;
    ++compared;
  }
  EXPECT_EQ(compared, 47);
  std::printf("[bin vs gguf] %d of %d tensors bit-identical in f32\n", exact, compared);
  EXPECT_EQ(DecodeTensor(*gguf, "output"), DecodeTensor(*bin, "token_embd"));

  // Vocabulary: identical.
  auto vb = Vocabulary::FromMetadata(bin->metadata());
  auto vg = Vocabulary::FromMetadata(gguf->metadata());
  ASSERT_TRUE(vb.ok() && vg.ok());
  EXPECT_EQ(vb->pieces, vg->pieces);
  EXPECT_EQ(vb->scores, vg->scores);
  EXPECT_EQ(vb->types, vg->types);
  EXPECT_EQ(vb->bos_id, vg->bos_id);
  EXPECT_EQ(vb->eos_id, vg->eos_id);
  EXPECT_EQ(vb->unk_id, vg->unk_id);
  EXPECT_EQ(vb->pad_id, vg->pad_id);
  EXPECT_EQ(vb->add_bos, vg->add_bos);
  EXPECT_EQ(vb->add_space_prefix, vg->add_space_prefix);

  // Hparams: identical but for what the two files record differently.
  auto cb = ModelConfig::FromMetadata(bin->metadata());
  auto cg = ModelConfig::FromMetadata(gguf->metadata());
  ASSERT_TRUE(cb.ok() && cg.ok());
  EXPECT_EQ(cb->dim, cg->dim);
  EXPECT_EQ(cb->n_layers, cg->n_layers);
  EXPECT_EQ(cb->n_heads, cg->n_heads);
  EXPECT_EQ(cb->n_kv_heads, cg->n_kv_heads);
  EXPECT_EQ(cb->head_dim, cg->head_dim);
  EXPECT_EQ(cb->n_ff, cg->n_ff);
  EXPECT_EQ(cb->vocab_size, cg->vocab_size);
  EXPECT_EQ(cb->rope_theta, cg->rope_theta);
  EXPECT_NEAR(cb->rms_eps, cg->rms_eps, 1e-12);  // the GGUF stores it as f32
  EXPECT_EQ(cb->context_length, 512);            // llama2.c's seq_len
  EXPECT_EQ(cg->context_length, 2048);           // what the GGUF's converter wrote
  EXPECT_TRUE(cb->tied_embeddings);
  EXPECT_FALSE(cg->tied_embeddings);
}

// --pure quantizes the classifier like every matrix; --ggml-q4-scales reproduces llama.cpp's
// blocks, which the default error-minimising scales beat on every tensor.
TEST(RealModels, Q4ClassifierAndScaleOptions) {
  const RealModel& m = Models()[0];
  const std::string dir = ScratchDir("q4options");
  auto convert = [&](const std::string& name, std::vector<std::string> extra) {
    std::vector<std::string> args = m.args;
    args.insert(args.end(), {"-o", dir + "/" + name, "-q"});
    args.insert(args.end(), extra.begin(), extra.end());
    EXPECT_EQ(RunTool("pi-convert", args).exit_code, 0) << name;
    auto file = PiFile::Open(dir + "/" + name);
    EXPECT_TRUE(file.ok()) << file.status();
    return file.ok() ? *std::move(file) : nullptr;
  };
  auto ref = convert("f32.pi", {"--dtype", "f32"});
  auto pure = convert("pure.pi", {"--dtype", "q4_0", "--pure"});
  auto ggml = convert("ggml.pi", {"--dtype", "q4_0", "--pure", "--ggml-q4-scales"});
  ASSERT_TRUE(ref && pure && ggml);
  for (const TensorInfo& t : pure->tensors()) {
    if (t.shape.size() == 1) continue;
    EXPECT_EQ(t.dtype, DType::kQ4_0) << t.name;
    const std::vector<float> want = DecodeTensor(*ref, t.name);
    EXPECT_LT(RelativeRmsError(DecodeTensor(*pure, t.name), want),
              RelativeRmsError(DecodeTensor(*ggml, t.name), want))
        << t.name;
  }
}

TEST(RealModels, RepeatedConversionsAreByteIdentical) {
  for (const RealModel& m : Models()) {
    for (const char* dtype : {"own", "q4_0"}) {
      const std::string dir = ScratchDir("determinism");
      const std::string out = dir + "/model.pi";
      std::vector<std::string> args = m.args;
      args.insert(args.end(), {"-o", out, "-q"});
      if (std::string(dtype) != "own") args.insert(args.end(), {"--dtype", dtype});
      ASSERT_EQ(RunTool("pi-convert", args).exit_code, 0);
      std::filesystem::rename(out, dir + "/first.pi");
      ASSERT_EQ(RunTool("pi-convert", args).exit_code, 0);
      EXPECT_EQ(ReadFileBytes(dir + "/first.pi"), ReadFileBytes(out)) << m.id << " " << dtype;
    }
  }
}

// Our name of a GGUF tensor.
std::string OurName(const std::string& gguf_name) {
  std::string name = gguf_name.substr(0, gguf_name.size() - 7);  // ".weight"
  return name.ends_with("ffn_down") ? name + "_t" : name;
}

SourceOptions ReluOptions() {
  SourceOptions options;
  options.activations.ffn_act = Activation{ActivationKind::kShiftedRelu, 0.25f};
  options.activations.norm_act = Activation{ActivationKind::kShiftedRelu, 1.0f};
  return options;
}

class LlamaCppGgufTest : public ::testing::TestWithParam<std::string> {};

// Importing llama.cpp's quantized GGUF keeps its blocks bit for bit (ffn_down, which must be
// transposed, is decoded and re-encoded: checked against the quantization error bound).
TEST_P(LlamaCppGgufTest, ImportCopiesGgmlBlocksBitExactly) {
  const std::string type = GetParam();
  const std::string path = RepoPath("tests/data/gguf/relu-llama-260k." + type + ".gguf");
  const DType dtype = *ParseDType(type);
  auto pi = ConvertWithLibrary(path, ReluOptions(), std::nullopt, ScratchDir("import") + "/m.pi");
  ASSERT_TRUE(pi);
  const std::vector<uint8_t> bytes = ReadFileBytes(path);
  absl::StatusOr<GgufFile> gguf = GgufFile::Parse(bytes, path);
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  int copied = 0;
  for (const GgufTensorInfo& info : gguf->tensors()) {
    const std::string name = OurName(info.name);
    const TensorInfo* t = pi->Find(name);
    ASSERT_NE(t, nullptr) << name;
    const std::span<const uint8_t> source = gguf->TensorData(info);
    if (!name.ends_with("ffn_down_t")) {
      EXPECT_EQ(t->dtype, info.ne.size() == 1 ? DType::kF32 : dtype) << name;
      const std::span<const uint8_t> ours = pi->Data(*t);
      EXPECT_TRUE(std::equal(ours.begin(), ours.end(), source.begin(), source.end())) << name;
      ++copied;
      continue;
    }
    // ffn_down [dim rows of n_ff] -> ffn_down_t [n_ff rows of dim]: re-quantized along dim.
    const uint64_t ff = info.ne[0], dim = info.ne[1];
    std::vector<float> stored(ff * dim);
    ASSERT_TRUE(DecodeRow(source.data(), stored.size(), dtype, stored.data()).ok());
    const std::vector<float> ours = DecodeTensor(*pi, name);
    for (uint64_t n = 0; n < ff; ++n) {
      for (uint64_t block = 0; block < dim / 32; ++block) {
        float amax = 0;
        for (uint64_t k = 0; k < 32; ++k)
          amax = std::max(amax, std::fabs(stored[(block * 32 + k) * ff + n]));
        // q8_0: half a step, plus the f16 rounding of the scale over up to 127 steps. q4_0: GGML
        // maps [-8d, 7d] with d = -max/8, so values beyond 7d on the far side clamp: one step.
        const float bound = (dtype == DType::kQ8_0 ? amax / 127 * 0.6f : amax / 8 * 1.01f) + 1e-7f;
        for (uint64_t k = 0; k < 32; ++k) {
          const uint64_t d = block * 32 + k;
          EXPECT_LE(std::fabs(ours[n * dim + d] - stored[d * ff + n]), bound)
              << name << " " << n << "," << d;
        }
      }
    }
  }
  EXPECT_EQ(copied, 4 * 8 + 2);  // 8 copied tensors per layer, token_embd and output_norm
}

// Our q8_0/q4_0 quantization of the model's f32 weights equals llama.cpp's, byte for byte, for
// every tensor quantized along the same axis (all but ffn_down): through the pi-convert command
// the README gives (q4_0: --pure --ggml-q4-scales, as llama-quantize --pure made the reference).
TEST_P(LlamaCppGgufTest, OurQuantizationEqualsLlamaCpp) {
  const std::string type = GetParam();
  const std::string path = RepoPath("tests/data/gguf/relu-llama-260k." + type + ".gguf");
  const std::string out = ScratchDir("ours") + "/m.pi";
  std::vector<std::string> args = {RepoPath("models/relu-llama-260k/model_q80.bin"),
                                   "--tokenizer",
                                   RepoPath("models/relu-llama-260k/tok1024.bin"),
                                   "--ffn-act",
                                   "shifted_relu:0.25",
                                   "--norm-act",
                                   "shifted_relu:1.0",
                                   "--dtype",
                                   type,
                                   "-q",
                                   "-o",
                                   out};
  if (type == "q4_0") args.insert(args.end(), {"--pure", "--ggml-q4-scales"});
  const ToolResult convert = RunTool("pi-convert", args);
  ASSERT_EQ(convert.exit_code, 0) << convert.err;
  absl::StatusOr<std::unique_ptr<PiFile>> opened = PiFile::Open(out);
  ASSERT_TRUE(opened.ok()) << opened.status();
  const std::unique_ptr<PiFile>& pi = *opened;
  const std::vector<uint8_t> bytes = ReadFileBytes(path);
  absl::StatusOr<GgufFile> gguf = GgufFile::Parse(bytes, path);
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  int compared = 0;
  for (const GgufTensorInfo& info : gguf->tensors()) {
    const std::string name = OurName(info.name);
    if (name.ends_with("ffn_down_t")) continue;
    const std::span<const uint8_t> theirs = gguf->TensorData(info);
    const std::span<const uint8_t> ours = pi->Data(*pi->Find(name));
    EXPECT_TRUE(std::equal(ours.begin(), ours.end(), theirs.begin(), theirs.end())) << name;
    ++compared;
  }
  EXPECT_EQ(compared, 34);
}

INSTANTIATE_TEST_SUITE_P(Q8AndQ4, LlamaCppGgufTest, ::testing::Values("q8_0", "q4_0"));

}  // namespace
}  // namespace pinfer::testing
