// model.pi and the GGUF hold the same weights; the same seed gives the same bytes; the output is a
// normal pinfer model; errors leave no file.
#include "bench/synth/synth_model.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "bench/synth/synth_design.h"
#include "bench/synth/synth_vocabulary.h"
#include "format/pi_file.h"
#include "format/quant.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/model/model_config.h"
#include "runtime/model/tensor_names.h"
#include "runtime/model/vocabulary.h"
#include "tests/synth/synth_test_util.h"
#include "tools/convert/converter.h"
#include "tools/convert/gguf_source.h"

namespace pinfer::synth::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kSmallShape[] = "custom:d=128,ff=320,layers=2,heads=4,kv_heads=2,vocab=300";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<float> DecodeAll(std::span<const uint8_t> bytes, int64_t rows, int64_t cols,
                             DType dtype) {
  std::vector<float> out(static_cast<size_t>(rows * cols));
  const uint64_t row_bytes = *RowBytes(dtype, static_cast<uint64_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_TRUE(DecodeRow(bytes.data() + r * row_bytes, static_cast<size_t>(cols), dtype,
                          out.data() + r * cols)
                    .ok());
  }
  return out;
}

class SynthModelTest : public ::testing::TestWithParam<DType> {};

TEST_P(SynthModelTest, GgufHoldsBitIdenticalWeights) {
  const DType dtype = GetParam();
  ScratchDir scratch("gguf_" + std::string(DTypeName(dtype)));
  SynthOptions options =
      SmallModelOptions(kSmallShape, dtype, scratch.Path("m.pi"), scratch.Path("m.gguf"));
  absl::StatusOr<SynthReport> report = WriteSyntheticModel(options);
  ASSERT_TRUE(report.ok()) << report.status();
  absl::StatusOr<std::unique_ptr<PiFile>> pi = PiFile::Open(options.output_path);
  ASSERT_TRUE(pi.ok()) << pi.status();
  ASSERT_TRUE((*pi)->VerifyAll().ok());
  absl::StatusOr<OpenedGguf> opened = OpenGguf(options.gguf_path);
  ASSERT_TRUE(opened.ok()) << opened.status();
  const GgufFile& gguf = opened->file;
  EXPECT_EQ(report->pi_bytes, std::filesystem::file_size(options.output_path));
  EXPECT_EQ(report->gguf_bytes, std::filesystem::file_size(options.gguf_path));

  // Every .pi weight tensor has a GGUF twin, and the GGUF has nothing else.
  size_t compared = 0;
  for (const TensorInfo& t : (*pi)->tensors()) {
    if (t.name == kPlantedProbabilityTensor) continue;
    SCOPED_TRACE(t.name);
    const bool down = t.name.ends_with(".ffn_down_t");
    const std::string gguf_name =
        down ? t.name.substr(0, t.name.size() - 2) + ".weight" : t.name + ".weight";
    const GgufTensorInfo* g = gguf.FindTensor(gguf_name);
    ASSERT_NE(g, nullptr);
    ++compared;
    std::span<const uint8_t> pi_bytes = (*pi)->Data(t);
    if (!down) {
      EXPECT_EQ(g->ne, std::vector<uint64_t>(t.shape.rbegin(), t.shape.rend()));
      ASSERT_EQ(gguf.TensorData(*g).size(), pi_bytes.size());
      EXPECT_EQ(std::memcmp(gguf.TensorData(*g).data(), pi_bytes.data(), pi_bytes.size()), 0);
      continue;
    }
    // ffn_down [d, n_ff] in the GGUF, ffn_down_t [n_ff, d] in model.pi: the same numbers...
    const int64_t n_ff = static_cast<int64_t>(t.shape[0]), d = static_cast<int64_t>(t.shape[1]);
    EXPECT_EQ(g->ne,
              std::vector<uint64_t>({static_cast<uint64_t>(n_ff), static_cast<uint64_t>(d)}));
    const std::vector<float> ours = DecodeAll(pi_bytes, n_ff, d, t.dtype);
    const std::vector<float> theirs = DecodeAll(gguf.TensorData(*g), d, n_ff, t.dtype);
    std::vector<float> transposed(ours.size());
    for (int64_t i = 0; i < n_ff; ++i) {
      for (int64_t j = 0; j < d; ++j) transposed[j * n_ff + i] = ours[i * d + j];
    }
    ASSERT_EQ(std::memcmp(transposed.data(), theirs.data(), theirs.size() * sizeof(float)), 0);
    // ...and importing the GGUF (transpose, re-encode along d) reproduces model.pi's bytes.
    const uint64_t row_bytes = *RowBytes(t.dtype, static_cast<uint64_t>(d));
    std::vector<uint8_t> reencoded(pi_bytes.size());
    std::vector<float> row(static_cast<size_t>(d));
    for (int64_t i = 0; i < n_ff; ++i) {
      for (int64_t j = 0; j < d; ++j) row[j] = theirs[j * n_ff + i];
      ASSERT_TRUE(
          EncodeRow(row.data(), row.size(), t.dtype, reencoded.data() + i * row_bytes).ok());
    }
    EXPECT_EQ(std::memcmp(reencoded.data(), pi_bytes.data(), pi_bytes.size()), 0);
  }
  EXPECT_EQ(compared, gguf.tensors().size());
  EXPECT_EQ(compared, 3u + 9u * 2u);

  // llama.cpp's hparams and tokenizer keys agree with model.pi's.
  absl::StatusOr<ModelConfig> config = ModelConfig::FromMetadata((*pi)->metadata());
  ASSERT_TRUE(config.ok());
  absl::StatusOr<Vocabulary> vocabulary = Vocabulary::FromMetadata((*pi)->metadata());
  ASSERT_TRUE(vocabulary.ok());
  EXPECT_EQ(gguf.GetString("general.architecture").value(), "llama");
  EXPECT_EQ(gguf.GetUint("llama.embedding_length").value(), 128u);
  EXPECT_EQ(gguf.GetUint("llama.feed_forward_length").value(), 320u);
  EXPECT_EQ(gguf.GetUint("llama.block_count").value(), 2u);
  EXPECT_EQ(gguf.GetUint("llama.attention.head_count").value(), 4u);
  EXPECT_EQ(gguf.GetUint("llama.attention.head_count_kv").value(), 2u);
  EXPECT_EQ(gguf.GetUint("llama.rope.dimension_count").value(), 32u);
  EXPECT_FLOAT_EQ(gguf.GetFloat("llama.attention.layer_norm_rms_epsilon").value(), 1e-5f);
  EXPECT_EQ(gguf.GetString("tokenizer.ggml.model").value(), "llama");
  EXPECT_EQ(gguf.GetStringArray("tokenizer.ggml.tokens").value(), vocabulary->pieces);
  EXPECT_EQ(gguf.GetUint("tokenizer.ggml.bos_token_id").value(), 1u);
  EXPECT_EQ(gguf.GetBool("pinfer.synthetic").value(), true);
}

// What the issue asks: the GGUF, imported by pi-convert (its GGUF reader and converter, declaring
// the activation a plain GGUF cannot carry), gives model.pi's weights bit for bit.
TEST_P(SynthModelTest, PiConvertReimportsTheGgufBitIdentically) {
  const DType dtype = GetParam();
  ScratchDir scratch("reimport_" + std::string(DTypeName(dtype)));
  SynthOptions options =
      SmallModelOptions(kSmallShape, dtype, scratch.Path("m.pi"), scratch.Path("m.gguf"));
  ASSERT_TRUE(WriteSyntheticModel(options).ok());
  ActivationFlags flags;
  flags.ffn_act = Activation::Parse("fatrelu:1").value();
  absl::StatusOr<SourceModel> source = ReadGguf(options.gguf_path, flags);
  ASSERT_TRUE(source.ok()) << source.status();
  ConvertOptions convert;
  convert.progress = false;
  // pi-synth quantizes with ggml's rule and plants down tiles that survive it in both
  // orientations; the transposed ffn_down is re-quantized, so with the same rule.
  convert.q4_scales = Q4Scales::kGgml;
  const std::string reimported_path = scratch.Path("reimported.pi");
  absl::StatusOr<ConvertReport> converted = ConvertModel(*source, reimported_path, convert);
  ASSERT_TRUE(converted.ok()) << converted.status();

  absl::StatusOr<std::unique_ptr<PiFile>> ours = PiFile::Open(options.output_path);
  absl::StatusOr<std::unique_ptr<PiFile>> theirs = PiFile::Open(reimported_path);
  ASSERT_TRUE(ours.ok() && theirs.ok());
  // Every weight tensor, ffn_down_t included: same dtype, shape and bytes.
  EXPECT_EQ((*theirs)->tensors().size() + 1, (*ours)->tensors().size());  // + the planted p
  for (const TensorInfo& t : (*theirs)->tensors()) {
    SCOPED_TRACE(t.name);
    const TensorInfo* mine = (*ours)->Find(t.name);
    ASSERT_NE(mine, nullptr);
    EXPECT_EQ(t.dtype, mine->dtype);
    EXPECT_EQ(t.shape, mine->shape);
    ASSERT_EQ(t.size, mine->size);
    EXPECT_EQ(std::memcmp((*theirs)->Data(t).data(), (*ours)->Data(*mine).data(), t.size), 0);
  }
  // The same hparams, activation and tokenizer.
  absl::StatusOr<ModelConfig> a = ModelConfig::FromMetadata((*ours)->metadata());
  absl::StatusOr<ModelConfig> b = ModelConfig::FromMetadata((*theirs)->metadata());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(std::tie(a->dim, a->n_layers, a->n_heads, a->n_kv_heads, a->head_dim, a->n_ff,
                     a->vocab_size, a->context_length),
            std::tie(b->dim, b->n_layers, b->n_heads, b->n_kv_heads, b->head_dim, b->n_ff,
                     b->vocab_size, b->context_length));
  EXPECT_FLOAT_EQ(a->rms_eps, b->rms_eps);
  EXPECT_EQ(a->rope_theta, b->rope_theta);
  EXPECT_EQ(a->ffn_act, b->ffn_act);
  absl::StatusOr<Vocabulary> va = Vocabulary::FromMetadata((*ours)->metadata());
  absl::StatusOr<Vocabulary> vb = Vocabulary::FromMetadata((*theirs)->metadata());
  ASSERT_TRUE(va.ok() && vb.ok());
  EXPECT_EQ(va->pieces, vb->pieces);
  EXPECT_EQ(va->scores, vb->scores);
  EXPECT_EQ(va->types, vb->types);
  EXPECT_EQ(std::tie(va->bos_id, va->eos_id, va->unk_id),
            std::tie(vb->bos_id, vb->eos_id, vb->unk_id));
}

INSTANTIATE_TEST_SUITE_P(DTypes, SynthModelTest,
                         ::testing::Values(DType::kQ4_0, DType::kQ8_0, DType::kF16, DType::kF32),
                         [](const ::testing::TestParamInfo<DType>& info) {
                           return std::string(DTypeName(info.param));
                         });

TEST(SynthModelTest, SameSeedGivesTheSameBytesWhateverTheThreadCount) {
  ScratchDir scratch("determinism");
  auto write = [&](const std::string& name, uint64_t seed, int threads) {
    SynthOptions options = SmallModelOptions(kSmallShape, DType::kQ4_0, scratch.Path(name + ".pi"),
                                             scratch.Path(name + ".gguf"));
    options.seed = seed;
    options.threads = threads;
    absl::StatusOr<SynthReport> report = WriteSyntheticModel(options);
    EXPECT_TRUE(report.ok()) << report.status();
    return std::make_pair(ReadAll(options.output_path), ReadAll(options.gguf_path));
  };
  const auto a = write("a", 11, 1);
  const auto b = write("b", 11, 3);
  const auto c = write("c", 12, 2);
  ASSERT_GT(a.first.size(), 100000u);
  EXPECT_TRUE(a.first == b.first) << "model.pi differs between 1 and 3 threads";
  EXPECT_TRUE(a.second == b.second) << "the GGUF differs between 1 and 3 threads";
  EXPECT_EQ(a.first.size(), c.first.size());
  EXPECT_FALSE(a.first == c.first) << "another seed gave the same model";
  EXPECT_FALSE(a.second == c.second);
}

TEST(SynthModelTest, WritesANormalSyntheticPinferModel) {
  ScratchDir scratch("model");
  SynthOptions options = SmallModelOptions(kSmallShape, DType::kQ8_0, scratch.Path("m.pi"));
  options.locality = {1.5, 0.05, 0.12};
  absl::StatusOr<SynthReport> report = WriteSyntheticModel(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_FALSE(std::filesystem::exists(scratch.Path("m.gguf")));
  absl::StatusOr<std::unique_ptr<PiFile>> pi =
      PiFile::Open(options.output_path, {.expected_kind = ArtifactKind::kModel});
  ASSERT_TRUE(pi.ok()) << pi.status();
  absl::StatusOr<ModelConfig> config = ModelConfig::FromMetadata((*pi)->metadata());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->synthetic);
  EXPECT_EQ(config->ffn_act.ToString(), "fatrelu:1");
  EXPECT_EQ(config->dim, 128);
  EXPECT_EQ(config->n_kv_heads, 2);
  EXPECT_EQ(config->head_dim, 32);
  EXPECT_EQ((*pi)->GetString("synth.locality").value(),
            "power-law:alpha=1.5,hot=0.05,density=0.12");
  EXPECT_EQ((*pi)->GetInt("synth.seed").value(), 1234);
  EXPECT_EQ((*pi)->GetInt("synth.bias_dims").value(), kBiasDims);
  EXPECT_EQ((*pi)->GetString("provenance.tool").value(), "pi-synth");
  // Every tensor of tensor_names.h, with its layout: norms f32, matrices in the chosen dtype.
  namespace tn = tensor_names;
  const std::pair<std::string, std::vector<uint64_t>> expected[] = {
      {tn::kTokenEmbedding, {300, 128}},
      {tn::kOutput, {300, 128}},
      {tn::kOutputNorm, {128}},
      {tn::AttnQ(1), {128, 128}},
      {tn::AttnK(1), {64, 128}},
      {tn::AttnV(1), {64, 128}},
      {tn::AttnOutput(1), {128, 128}},
      {tn::FfnGate(1), {320, 128}},
      {tn::FfnUp(1), {320, 128}},
      {tn::FfnDownT(1), {320, 128}},
      {tn::AttnNorm(0), {128}},
      {tn::FfnNorm(0), {128}},
      {kPlantedProbabilityTensor, {2, 320}}};
  for (const auto& [name, shape] : expected) {
    absl::StatusOr<const TensorInfo*> t = (*pi)->GetChecked(name, shape);
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ((*t)->dtype,
              shape.size() == 1 || name == kPlantedProbabilityTensor ? DType::kF32 : DType::kQ8_0);
  }
  EXPECT_EQ((*pi)->tensors().size(), 3u + 9u * 2u + 1u);
  // The tokenizer is the Llama 2 vocabulary's first 300 pieces: specials, 256 bytes, merges.
  absl::StatusOr<Vocabulary> vocabulary = Vocabulary::FromMetadata((*pi)->metadata());
  ASSERT_TRUE(vocabulary.ok()) << vocabulary.status();
  ASSERT_EQ(vocabulary->size(), 300u);
  EXPECT_EQ(vocabulary->pieces[1], "<s>");
  EXPECT_EQ(vocabulary->pieces[3], "<0x00>");
  EXPECT_EQ(vocabulary->pieces[258], "<0xFF>");
  EXPECT_EQ(vocabulary->pieces[259], "\xe2\x96\x81\xe2\x96\x81");  // "▁▁", Llama 2's first merge
  // Norms are ones; the planted probabilities average to the density in every layer.
  const TensorInfo* norm = (*pi)->Find(tn::FfnNorm(1));
  for (int i = 0; i < 128; ++i) EXPECT_EQ((*pi)->DataAs<float>(*norm)[i], 1.0f);
  const float* planted = (*pi)->DataAs<float>(*(*pi)->Find(kPlantedProbabilityTensor));
  for (int l = 0; l < 2; ++l) {
    double sum = 0;
    for (int i = 0; i < 320; ++i) sum += planted[l * 320 + i];
    EXPECT_NEAR(sum / 320, 0.12, 1e-6);
  }
  EXPECT_NEAR((*pi)->GetFloat("synth.hot_probability").value(), report->hot_probability, 1e-12);
}

TEST(SynthVocabularyTest, ExtendsBeyondLlama2WithUnusedPieces) {
  absl::StatusOr<Vocabulary> v = SyntheticVocabulary(DefaultTokenizerPath(), 32005);
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_EQ(v->size(), 32005u);
  EXPECT_EQ(v->pieces[31999], "\xe7\xbb\x99");  // Llama 2's last piece, "给"
  EXPECT_EQ(v->pieces[32000], "<synth_unused_32000>");
  EXPECT_EQ(v->types[32004], static_cast<int32_t>(TokenType::kUnused));
  EXPECT_THAT(SyntheticVocabulary(DefaultTokenizerPath(), 100).status().message(),
              HasSubstr("too small"));
  EXPECT_THAT(SyntheticVocabulary("/nonexistent/tokenizer.bin", 512).status().message(),
              HasSubstr("/nonexistent/tokenizer.bin: no such file"));
}

TEST(SynthModelTest, FailuresLeaveNoFile) {
  ScratchDir scratch("failures");
  auto expect_error = [&](SynthOptions options, const std::string& reason) {
    absl::StatusOr<SynthReport> report = WriteSyntheticModel(options);
    ASSERT_FALSE(report.ok());
    EXPECT_THAT(report.status().message(), HasSubstr(reason));
    EXPECT_TRUE(std::filesystem::is_empty(scratch.dir())) << reason;
  };
  const std::string pi = scratch.Path("m.pi"), gguf = scratch.Path("m.gguf");
  SynthOptions options = SmallModelOptions(kSmallShape, DType::kQ4_0, pi, gguf);
  options.tokenizer_path = scratch.Path("missing.bin");
  expect_error(options, "missing.bin: no such file");
  options = SmallModelOptions(kSmallShape, DType::kQ4_0, pi, scratch.Path("no/such/dir/m.gguf"));
  expect_error(options, "no/such/dir/m.gguf");
  options = SmallModelOptions(kSmallShape, DType::kQ4_0, scratch.Path("no/such/dir/m.pi"), gguf);
  expect_error(options, "no/such/dir/m.pi");
  options = SmallModelOptions(kSmallShape, DType::kQ4_0, pi, pi);
  expect_error(options, "is also the path of -o");
  options = SmallModelOptions(kSmallShape, DType::kI32, pi);
  expect_error(options, "--dtype i32 is not a weight dtype");
  options = SmallModelOptions(kSmallShape, DType::kQ4_0, pi);
  options.locality = {4.0, 0.01, 0.6};
  expect_error(options, "out of reach");
}

}  // namespace
}  // namespace pinfer::synth::testing
