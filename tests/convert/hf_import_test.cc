// HuggingFace directory import: small checkpoints in the real layout of Llama-2, ReluLLaMA,
// ProSparse, Bamboo and Mistral (tests/convert/hf_fixture.h), a SentencePiece tokenizer.model
// trained like Llama's, and tokenizer.json derived from it as transformers does.
#include <cmath>
#include <filesystem>
#include <random>

#include "format/half.h"
#include "format/pi_file.h"
#include "gtest/gtest.h"
#include "runtime/model/model_config.h"
#include "runtime/model/vocabulary.h"
#include "tests/convert/hf_fixture.h"
#include "tests/convert/spm_helper.h"
#include "tests/convert/test_util.h"
#include "tools/convert/converter.h"
#include "tools/convert/hf_tokenizer.h"
#include "tools/convert/source_reader.h"

namespace pinfer::testing {
namespace {

const std::string kSpace = "\xe2\x96\x81";

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
  convert.command_line = "test";
  absl::StatusOr<ConvertReport> report = ConvertModel(*model, out, convert);
  EXPECT_TRUE(report.ok()) << report.status();
  absl::StatusOr<std::unique_ptr<PiFile>> file = PiFile::Open(out);
  EXPECT_TRUE(file.ok()) << file.status();
  return file.ok() ? *std::move(file) : nullptr;
}

// The rows of an HF q/k matrix in our interleaved-RoPE order, written out directly: within each
// head, our row 2j is HF row j and our row 2j+1 is HF row j + head_dim/2.
std::vector<float> InterleaveRows(const std::vector<float>& hf, int64_t heads, int64_t head_dim,
                                  int64_t cols) {
  std::vector<float> out(hf.size());
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t j = 0; j < head_dim / 2; ++j) {
      for (int64_t c = 0; c < cols; ++c) {
        out[((h * head_dim) + 2 * j) * cols + c] = hf[(h * head_dim + j) * cols + c];
        out[((h * head_dim) + 2 * j + 1) * cols + c] =
            hf[(h * head_dim + head_dim / 2 + j) * cols + c];
      }
    }
  }
  return out;
}

TEST(HfTokenizer, SentencePieceModelReadsAsTheLibrarySeesIt) {
  absl::StatusOr<Vocabulary> v = ReadSentencePieceTokenizer(TestTokenizerModel());
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_TRUE(v->Validate().ok());
  const std::vector<SpmPiece> pieces = SentencePiecePieces(TestTokenizerModel());
  ASSERT_EQ(v->size(), pieces.size());
  EXPECT_EQ(v->size(), 400u);
  for (size_t i = 0; i < pieces.size(); ++i) {
    EXPECT_EQ(v->pieces[i], pieces[i].piece);
    EXPECT_EQ(v->scores[i], pieces[i].score);
  }
  EXPECT_EQ(v->pieces[0], "<unk>");
  EXPECT_EQ(v->pieces[1], "<s>");
  EXPECT_EQ(v->pieces[2], "</s>");
  EXPECT_EQ(v->types[0], static_cast<int32_t>(TokenType::kUnknown));
  EXPECT_EQ(v->types[1], static_cast<int32_t>(TokenType::kControl));
  EXPECT_EQ(v->types[2], static_cast<int32_t>(TokenType::kControl));
  EXPECT_EQ(std::count(v->types.begin(), v->types.end(), static_cast<int32_t>(TokenType::kByte)),
            256);
  EXPECT_EQ(v->pieces[3], "<0x00>");
  EXPECT_EQ(v->unk_id, 0);
  EXPECT_EQ(v->bos_id, 1);
  EXPECT_EQ(v->eos_id, 2);
  EXPECT_EQ(v->pad_id, -1);
  EXPECT_TRUE(v->add_space_prefix);
  // Our pieces, indexed by the library's encoding, spell the text (with the dummy prefix).
  const std::string text = "Once upon a time, there was a little girl named Lily.";
  std::string spelled;
  for (int id : SentencePieceEncode(TestTokenizerModel(), text)) spelled += v->pieces[id];
  std::string expected = kSpace + text;
  for (size_t p = 0; (p = expected.find(' ', p)) != std::string::npos;)
    expected.replace(p, 1, kSpace);
  EXPECT_EQ(spelled, expected);
}

TEST(HfTokenizer, TokenizerJsonRanksMergesAsTheModelScoresThem) {
  const std::string dir = ScratchDir("json");
  const nlohmann::json tokenizer_json = TokenizerJsonFromModel(TestTokenizerModel());
  WriteFileText(dir + "/tokenizer.json", tokenizer_json.dump());
  absl::StatusOr<Vocabulary> json = ReadTokenizerJson(dir + "/tokenizer.json");
  ASSERT_TRUE(json.ok()) << json.status();
  absl::StatusOr<Vocabulary> model = ReadSentencePieceTokenizer(TestTokenizerModel());
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(json->pieces, model->pieces);
  EXPECT_EQ(json->types, model->types);
  EXPECT_EQ(json->unk_id, 0);
  EXPECT_EQ(json->bos_id, 1);
  EXPECT_EQ(json->eos_id, 2);
  EXPECT_TRUE(json->add_space_prefix);
  // Pieces some merge makes score -rank (> -n_merges); the json's ranks order them exactly as
  // the model's scores do, which makes best-score merging reproduce HF's lowest-rank merging.
  const float n_merges = static_cast<float>(tokenizer_json["model"]["merges"].size());
  std::vector<int> merged;
  for (size_t i = 0; i < json->size(); ++i) {
    if (json->types[i] == static_cast<int32_t>(TokenType::kNormal) && json->scores[i] > -n_merges) {
      merged.push_back(static_cast<int>(i));
    }
  }
  ASSERT_GT(merged.size(), 50u);
  for (size_t a = 0; a < merged.size(); ++a) {
    for (size_t b = a + 1; b < merged.size(); ++b) {
      const int x = merged[a], y = merged[b];
      ASSERT_EQ(model->scores[x] > model->scores[y], json->scores[x] > json->scores[y])
          << model->pieces[x] << " vs " << model->pieces[y];
    }
  }
}

TEST(HfTokenizer, TokenizerJsonVariants) {
  const std::string dir = ScratchDir("variants");
  nlohmann::json base = TokenizerJsonFromModel(TestTokenizerModel());
  {  // Newer files: no normalizer, a Metaspace pre-tokenizer, merges as pairs.
    nlohmann::json j = base;
    j["normalizer"] = nullptr;
    j["pre_tokenizer"] = {{"type", "Metaspace"},
                          {"replacement", kSpace},
                          {"prepend_scheme", "first"},
                          {"split", false}};
    nlohmann::json pairs = nlohmann::json::array();
    for (const auto& m : j["model"]["merges"]) {
      const std::string s = m.get<std::string>();
      pairs.push_back({s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)});
    }
    j["model"]["merges"] = pairs;
    WriteFileText(dir + "/a.json", j.dump());
    absl::StatusOr<Vocabulary> v = ReadTokenizerJson(dir + "/a.json");
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_TRUE(v->add_space_prefix);
    absl::StatusOr<Vocabulary> reference = ReadTokenizerJson([&] {
      WriteFileText(dir + "/b.json", base.dump());
      return dir + "/b.json";
    }());
    EXPECT_EQ(v->scores, reference->scores);
    j["pre_tokenizer"]["prepend_scheme"] = "never";
    WriteFileText(dir + "/c.json", j.dump());
    EXPECT_FALSE(ReadTokenizerJson(dir + "/c.json")->add_space_prefix);
  }
  {  // GPT-2 style byte-level BPE: read as such (tests/text/bpe_*_test.cc test it in full).
    nlohmann::json j = base;
    j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}};
    WriteFileText(dir + "/d.json", j.dump());
    absl::StatusOr<Vocabulary> v = ReadTokenizerJson(dir + "/d.json");
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(v->model, "gpt2");
    EXPECT_EQ(v->pre_tokenizer, "gpt-2");
  }
  {  // Found when nested deep in Sequences (200000 levels: read without recursing); this one's
     // pre-tokenizer is not byte-level, which is refused.
    nlohmann::json j = base;
    j.erase("decoder");
    std::string text = j.dump();
    std::string open, close;
    for (int i = 0; i < 200000; ++i) {
      open += R"({"type":"Sequence","decoders":[)";
      close += "]}";
    }
    text.back() = ',';
    text += R"("decoder":)" + open + R"({"type":"ByteLevel"})" + close + "}";
    WriteFileText(dir + "/e.json", text);
    absl::StatusOr<Vocabulary> v = ReadTokenizerJson(dir + "/e.json");
    ASSERT_FALSE(v.ok());
    EXPECT_NE(v.status().message().find("byte-level"), std::string::npos) << v.status();
  }
}

struct VariantCase {
  const char* name;
  HfVariant variant;
  std::string dtype;
  int64_t n_kv_heads;
  const char* ffn_act;
  int64_t context_length;
  int32_t pad_id;
};

class HfVariantTest : public ::testing::TestWithParam<VariantCase> {};

TEST_P(HfVariantTest, ConvertsWithTheRightHparamsActivationAndWeights) {
  const VariantCase& vc = GetParam();
  const std::string dir = ScratchDir("model");
  HfSpec spec;
  spec.variant = vc.variant;
  spec.dtype = vc.dtype;
  spec.n_kv_heads = vc.n_kv_heads;
  const HfModel hf = WriteHfModel(dir, spec);
  auto pi = Convert(dir, {}, DType::kF32, ScratchDir("out") + "/m.pi");
  ASSERT_TRUE(pi);
  absl::StatusOr<ModelConfig> c = ModelConfig::FromMetadata(pi->metadata());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ffn_act.ToString(), vc.ffn_act);
  EXPECT_EQ(c->norm_act.ToString(), "none");
  EXPECT_EQ(c->dim, spec.dim);
  EXPECT_EQ(c->n_ff, spec.n_ff);
  EXPECT_EQ(c->n_layers, spec.n_layers);
  EXPECT_EQ(c->n_heads, spec.n_heads);
  EXPECT_EQ(c->n_kv_heads, vc.n_kv_heads);
  EXPECT_EQ(c->head_dim, spec.dim / spec.n_heads);
  EXPECT_EQ(c->vocab_size, hf.vocab_size);
  EXPECT_EQ(c->context_length, vc.context_length);
  EXPECT_EQ(c->rope_theta, 10000.0);
  EXPECT_NEAR(c->rms_eps, 1e-5, 1e-12);
  EXPECT_EQ(c->rope_source_layout, "half");
  EXPECT_FALSE(c->tied_embeddings);
  absl::StatusOr<Vocabulary> v = Vocabulary::FromMetadata(pi->metadata());
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->pad_id, vc.pad_id);
  EXPECT_EQ(v->bos_id, 1);
  EXPECT_TRUE(v->add_bos);
  EXPECT_NE(v->chat_template.find("[INST]"), std::string::npos);

  const int64_t hd = spec.dim / spec.n_heads;
  auto w = [&](const std::string& name) { return hf.weights.at(name).values; };
  EXPECT_EQ(DecodeTensor(*pi, "token_embd"), w("model.embed_tokens.weight"));
  EXPECT_EQ(DecodeTensor(*pi, "output"), w("lm_head.weight"));
  EXPECT_EQ(DecodeTensor(*pi, "output_norm"), w("model.norm.weight"));
  for (int l = 0; l < spec.n_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const std::string b = "blk." + std::to_string(l) + ".";
    EXPECT_EQ(DecodeTensor(*pi, b + "attn_norm"), w(p + "input_layernorm.weight"));
    EXPECT_EQ(DecodeTensor(*pi, b + "attn_q"),
              InterleaveRows(w(p + "self_attn.q_proj.weight"), spec.n_heads, hd, spec.dim));
    EXPECT_EQ(DecodeTensor(*pi, b + "attn_k"),
              InterleaveRows(w(p + "self_attn.k_proj.weight"), vc.n_kv_heads, hd, spec.dim));
    EXPECT_EQ(DecodeTensor(*pi, b + "attn_v"), w(p + "self_attn.v_proj.weight"));
    EXPECT_EQ(DecodeTensor(*pi, b + "attn_output"), w(p + "self_attn.o_proj.weight"));
    EXPECT_EQ(DecodeTensor(*pi, b + "ffn_norm"), w(p + "post_attention_layernorm.weight"));
    EXPECT_EQ(DecodeTensor(*pi, b + "ffn_gate"), w(p + "mlp.gate_proj.weight"));
    EXPECT_EQ(DecodeTensor(*pi, b + "ffn_up"), w(p + "mlp.up_proj.weight"));
    EXPECT_EQ(DecodeTensor(*pi, b + "ffn_down_t"),
              Transpose(w(p + "mlp.down_proj.weight"), spec.dim, spec.n_ff));
  }
}

INSTANTIATE_TEST_SUITE_P(
    RealConfigs, HfVariantTest,
    ::testing::Values(VariantCase{"Llama2", HfVariant::kLlama2, "F16", 4, "silu", 4096, -1},
                      VariantCase{"ReluLLaMA", HfVariant::kReluLlama, "F32", 4, "relu", 2048, 0},
                      VariantCase{"ProSparse", HfVariant::kProSparse, "BF16", 4, "fatrelu:0.01",
                                  4096, -1},
                      VariantCase{"Bamboo", HfVariant::kBamboo, "BF16", 2, "drelu", 4096, -1},
                      VariantCase{"Mistral", HfVariant::kMistral, "BF16", 2, "silu", 4096, -1}),
    [](const auto& info) { return std::string(info.param.name); });

// RoPE applied HF's way (rotate_half: pairs (j, j + d/2)) to HF's q/k gives the same attention
// scores as RoPE applied our way (pairs (2j, 2j+1)) to the converted q/k: the permutation is the
// right one, not merely a consistent one.
TEST(HfImport, RopePermutationPreservesAttentionScores) {
  const std::string dir = ScratchDir("rope");
  HfSpec spec;
  spec.variant = HfVariant::kMistral;
  spec.n_kv_heads = 2;
  spec.dtype = "F32";
  const HfModel hf = WriteHfModel(dir, spec);
  auto pi = Convert(dir, {}, std::nullopt, ScratchDir("out") + "/m.pi");
  ASSERT_TRUE(pi);
  const int64_t d = spec.dim, hd = d / spec.n_heads, group = spec.n_heads / spec.n_kv_heads;
  const double theta = 10000.0;
  std::mt19937 rng(7);
  std::normal_distribution<float> dist;
  std::vector<float> x1(d), x2(d);
  for (float& v : x1) v = dist(rng);
  for (float& v : x2) v = dist(rng);
  auto matvec = [](const std::vector<float>& m, const std::vector<float>& x) {
    std::vector<double> y(m.size() / x.size());
    for (size_t r = 0; r < y.size(); ++r) {
      for (size_t c = 0; c < x.size(); ++c) y[r] += m[r * x.size() + c] * x[c];
    }
    return y;
  };
  auto rope = [&](std::vector<double> v, int pos, bool interleaved) {
    for (size_t h = 0; h < v.size() / hd; ++h) {
      for (int64_t j = 0; j < hd / 2; ++j) {
        const double angle = pos * std::pow(theta, -2.0 * j / hd);
        const size_t a = h * hd + (interleaved ? 2 * j : j);
        const size_t b = h * hd + (interleaved ? 2 * j + 1 : j + hd / 2);
        const double va = v[a], vb = v[b];
        v[a] = va * std::cos(angle) - vb * std::sin(angle);
        v[b] = va * std::sin(angle) + vb * std::cos(angle);
      }
    }
    return v;
  };
  for (int l = 0; l < spec.n_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".self_attn.";
    const std::string b = "blk." + std::to_string(l) + ".";
    const auto q_hf = rope(matvec(hf.weights.at(p + "q_proj.weight").values, x1), 5, false);
    const auto k_hf = rope(matvec(hf.weights.at(p + "k_proj.weight").values, x2), 2, false);
    const auto q_us = rope(matvec(DecodeTensor(*pi, b + "attn_q"), x1), 5, true);
    const auto k_us = rope(matvec(DecodeTensor(*pi, b + "attn_k"), x2), 2, true);
    for (int64_t h = 0; h < spec.n_heads; ++h) {
      double s_hf = 0, s_us = 0;
      for (int64_t i = 0; i < hd; ++i) {
        s_hf += q_hf[h * hd + i] * k_hf[(h / group) * hd + i];
        s_us += q_us[h * hd + i] * k_us[(h / group) * hd + i];
      }
      EXPECT_NEAR(s_us, s_hf, 1e-9 + 1e-6 * std::fabs(s_hf)) << "layer " << l << " head " << h;
    }
  }
}

// At their own dtype, BF16/F16 weights are copied: even the permuted q/k rows are bit-exact.
TEST(HfImport, HalfPrecisionWeightsAreCopiedBitExactly) {
  for (const std::string dtype : {"BF16", "F16"}) {
    const std::string dir = ScratchDir("copy" + dtype);
    HfSpec spec;
    spec.variant = HfVariant::kProSparse;
    spec.dtype = dtype;
    const HfModel hf = WriteHfModel(dir, spec);
    auto pi = Convert(dir, {}, std::nullopt, ScratchDir("out" + dtype) + "/m.pi");
    ASSERT_TRUE(pi);
    const TensorInfo* v = pi->Find("blk.1.attn_v");
    ASSERT_EQ(v->dtype, dtype == "BF16" ? DType::kBF16 : DType::kF16);
    const std::vector<uint8_t> raw =
        EncodeAs(dtype, hf.weights.at("model.layers.1.self_attn.v_proj.weight").values);
    EXPECT_EQ(std::vector<uint8_t>(pi->Data(*v).begin(), pi->Data(*v).end()), raw);
    const int64_t hd = spec.dim / spec.n_heads;
    const std::vector<uint8_t> q = EncodeAs(
        dtype, InterleaveRows(hf.weights.at("model.layers.1.self_attn.q_proj.weight").values,
                              spec.n_heads, hd, spec.dim));
    const TensorInfo* t = pi->Find("blk.1.attn_q");
    EXPECT_EQ(std::vector<uint8_t>(pi->Data(*t).begin(), pi->Data(*t).end()), q);
    EXPECT_EQ(pi->Find("blk.1.attn_norm")->dtype, DType::kF32);  // norms are always f32
  }
}

TEST(HfImport, ShardedCheckpointEqualsSingleFile) {
  HfSpec spec;
  spec.variant = HfVariant::kReluLlama;
  spec.dtype = "F16";
  // Same directory name: it becomes general.name, part of the content digest.
  const std::string one = ScratchDir("one/ckpt"), three = ScratchDir("three/ckpt");
  WriteHfModel(one, spec);
  spec.shards = 3;
  WriteHfModel(three, spec);
  ASSERT_TRUE(FileExists(three + "/model-00003-of-00003.safetensors"));
  ASSERT_TRUE(FileExists(three + "/model.safetensors.index.json"));
  auto a = Convert(one, {}, DType::kQ8_0, ScratchDir("a") + "/m.pi");
  auto b = Convert(three, {}, DType::kQ8_0, ScratchDir("b") + "/m.pi");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->ContentDigestHex(), b->ContentDigestHex());
}

TEST(HfImport, TokenizerJsonOnlyAndTiedEmbeddings) {
  const std::string dir = ScratchDir("json_only");
  HfSpec spec;
  spec.tokenizer_model = false;
  spec.tokenizer_json = true;
  spec.tied = true;
  WriteHfModel(dir, spec);
  auto pi = Convert(dir, {}, std::nullopt, ScratchDir("out") + "/m.pi");
  ASSERT_TRUE(pi);
  EXPECT_EQ(pi->Find("output"), nullptr);
  EXPECT_TRUE(ModelConfig::FromMetadata(pi->metadata())->tied_embeddings);
  absl::StatusOr<Vocabulary> v = Vocabulary::FromMetadata(pi->metadata());
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->pieces, ReadSentencePieceTokenizer(TestTokenizerModel())->pieces);
}

TEST(HfImport, ActivationFlagOverridesConfigWithANote) {
  const std::string dir = ScratchDir("override");
  HfSpec spec;
  spec.variant = HfVariant::kReluLlama;
  WriteHfModel(dir, spec);
  SourceOptions options;
  options.activations.ffn_act = Activation{ActivationKind::kFatRelu, 0.1f};
  std::vector<std::string> notes;
  auto pi = Convert(dir, options, std::nullopt, ScratchDir("out") + "/m.pi", &notes);
  ASSERT_TRUE(pi);
  EXPECT_EQ(ModelConfig::FromMetadata(pi->metadata())->ffn_act.ToString(), "fatrelu:0.1");
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("overrides relu"), std::string::npos) << notes[0];
}

// The CLI on an HF directory, end to end, verified by pi-inspect.
TEST(HfImport, PiConvertCliOnADirectory) {
  const std::string dir = ScratchDir("cli");
  HfSpec spec;
  spec.variant = HfVariant::kBamboo;
  spec.dtype = "BF16";
  spec.n_kv_heads = 2;
  spec.shards = 2;
  WriteHfModel(dir, spec);
  const std::string out = ScratchDir("out") + "/bamboo.pi";
  ToolResult r = RunTool("pi-convert", {dir, "-o", out, "--dtype", "q4_0", "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("note: sliding_window 4096"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("HF safetensors (BambooForCausalLM, 2 shards)"), std::string::npos) << r.err;
  EXPECT_EQ(RunTool("pi-inspect", {"--verify", "-q", out}).exit_code, 0);
}

}  // namespace
}  // namespace pinfer::testing
