#include "tests/convert/gguf_family_fixture.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "gtest/gtest.h"
#include "tests/convert/test_util.h"
#include "tools/convert/source_reader.h"

namespace pinfer::testing {
namespace {

std::vector<uint8_t> F32Bytes(const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * sizeof(float));
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

// The builder, minus the names in options.drop.
class Writer {
 public:
  explicit Writer(const GgufFamilyOptions& options) : options_(options) {
    if (options.powerinfer) builder_.set_magic("PWRI");
  }
  bool Keep(const std::string& name) const {
    return std::find(options_.drop.begin(), options_.drop.end(), name) == options_.drop.end();
  }
  // A row-major [rows, cols] matrix (ne {cols, rows}) or, with rows 0, a vector.
  void Tensor(const std::string& name, const std::vector<float>& values, uint64_t rows,
              uint64_t cols) {
    if (!Keep(name)) return;
    ASSERT_EQ(values.size(), std::max<uint64_t>(rows, 1) * cols) << name;
    builder_.AddTensor(name, rows == 0 ? std::vector<uint64_t>{cols} : std::vector{cols, rows}, 0,
                       F32Bytes(values));
  }
  void Uint32(const std::string& key, uint32_t v) {
    if (Keep(key)) builder_.AddUint32(key, v);
  }
  void Float32(const std::string& key, float v) {
    if (Keep(key)) builder_.AddFloat32(key, v);
  }
  void String(const std::string& key, const std::string& v) {
    if (Keep(key)) builder_.AddString(key, v);
  }
  // The byte-level BPE tokenizer keys as gguf-py's SpecialVocab and _set_vocab_gpt2 write them.
  void Vocabulary(const pinfer::Vocabulary& v) {
    String("tokenizer.ggml.model", "gpt2");
    if (!v.pre_tokenizer.empty()) String("tokenizer.ggml.pre", v.pre_tokenizer);
    builder_.AddStringArray("tokenizer.ggml.tokens", v.pieces);
    builder_.AddInt32Array("tokenizer.ggml.token_type", v.types);
    builder_.AddStringArray("tokenizer.ggml.merges", v.merges);
    Uint32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(v.bos_id));
    Uint32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(v.eos_id));
    if (v.pad_id >= 0) Uint32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(v.pad_id));
    builder_.AddBool("tokenizer.ggml.add_bos_token", v.add_bos);
  }
  // PowerInfer's predictor of each layer: fc1 ~ N(0, 1/dim), fc2 ~ N(0, 1/rank), and its key.
  void Predictors(int64_t layers, uint64_t dim, uint64_t n_ff) {
    const uint64_t rank = static_cast<uint64_t>(options_.rank);
    std::mt19937 rng(11);
    std::normal_distribution<float> w1(0.0f, 1.0f / std::sqrt(static_cast<float>(dim)));
    std::normal_distribution<float> w2(0.0f, 1.0f / std::sqrt(static_cast<float>(rank)));
    for (int64_t l = 0; l < layers; ++l) {
      std::vector<float> fc1(rank * dim), fc2(n_ff * rank);
      for (float& x : fc1) x = w1(rng);
      for (float& x : fc2) x = w2(rng);
      Tensor("blk." + std::to_string(l) + ".fc1.weight", fc1, rank, dim);
      Tensor("blk." + std::to_string(l) + ".fc2.weight", fc2, n_ff, rank);
    }
    Float32("powerinfer.sparse_threshold", 0.0f);
  }
  std::vector<uint8_t> Build() {
    if (options_.extra) options_.extra(builder_);
    return builder_.Build();
  }

 private:
  const GgufFamilyOptions& options_;
  GgufBuilder builder_;
};

std::string Blk(int64_t l, const std::string& suffix) {
  return "blk." + std::to_string(l) + "." + suffix;
}

}  // namespace

Vocabulary HfVocabulary(const std::string& dir) {
  absl::StatusOr<SourceModel> source = ReadSource(dir, {});
  EXPECT_TRUE(source.ok()) << source.status();
  return source.ok() ? source->vocabulary : Vocabulary{};
}

std::vector<uint8_t> FalconGguf(const FalconModel& hf, const GgufFamilyOptions& options) {
  const FalconSpec& s = hf.spec;
  const uint64_t D = s.dim, F = 4 * s.dim, V = s.vocab, hd = s.dim / s.n_heads;
  const uint64_t n_kv = s.n_kv_heads, group = s.n_heads / s.n_kv_heads;
  Writer w(options);
  w.String("general.architecture", "falcon");
  w.String("general.name", "Falcon");
  w.Uint32("falcon.context_length", static_cast<uint32_t>(s.positions));
  w.String("falcon.tensor_data_layout", "jploski");
  w.Uint32("falcon.embedding_length", static_cast<uint32_t>(D));
  w.Uint32("falcon.feed_forward_length", static_cast<uint32_t>(F));
  w.Uint32("falcon.block_count", static_cast<uint32_t>(s.n_layers));
  w.Uint32("falcon.attention.head_count", static_cast<uint32_t>(s.n_heads));
  w.Uint32("falcon.attention.head_count_kv", static_cast<uint32_t>(n_kv));
  w.Float32("falcon.attention.layer_norm_epsilon", 1e-5f);
  // convert_hf_to_gguf.py writes no freq_base for Falcon (llama.cpp's default 10000 is every
  // released Falcon's); the 40B fixture's 500000 travels in the key llama.cpp reads.
  if (s.rope_theta != 10000.0) w.Float32("falcon.rope.freq_base", static_cast<float>(s.rope_theta));
  w.Uint32("general.file_type", 0);
  w.Vocabulary(HfVocabulary(hf.dir));
  if (options.powerinfer) w.Predictors(s.n_layers, D, F);

  auto weight = [&](const std::string& name) -> const std::vector<float>& {
    auto it = hf.weights.find(name);
    EXPECT_NE(it, hf.weights.end()) << name;
    static const std::vector<float> kNone;
    return it == hf.weights.end() ? kNone : it->second;
  };
  auto h = [](int64_t l, const std::string& suffix) {
    return "transformer.h." + std::to_string(l) + "." + suffix;
  };
  w.Tensor("token_embd.weight", weight("transformer.word_embeddings.weight"), V, D);
  w.Tensor("output_norm.weight", weight("transformer.ln_f.weight"), 0, D);
  w.Tensor("output_norm.bias", weight("transformer.ln_f.bias"), 0, D);
  if (!s.tied) w.Tensor("output.weight", weight("lm_head.weight"), V, D);
  for (int64_t l = 0; l < s.n_layers; ++l) {
    const std::string mlp_norm = s.new_decoder_architecture ? "ln_mlp" : "input_layernorm";
    for (const char* part : {"weight", "bias"}) {
      w.Tensor(Blk(l, std::string("attn_norm.") + part), weight(h(l, mlp_norm + "." + part)), 0, D);
      if (s.new_decoder_architecture) {
        w.Tensor(Blk(l, std::string("attn_norm_2.") + part),
                 weight(h(l, std::string("ln_attn.") + part)), 0, D);
      }
    }
    // The "jploski" regrouping: view [n_kv, group + 2, hd, D]; q = [:, :group], k = [:, group],
    // v = [:, group + 1], concatenated.
    const std::vector<float>& fused = weight(h(l, "self_attention.query_key_value.weight"));
    std::vector<float> qkv;
    auto append_head = [&](uint64_t kv, uint64_t slot) {
      const uint64_t first = ((kv * (group + 2) + slot) * hd) * D;
      qkv.insert(qkv.end(), fused.begin() + first, fused.begin() + first + hd * D);
    };
    for (uint64_t kv = 0; kv < n_kv; ++kv) {
      for (uint64_t slot = 0; slot < group; ++slot) append_head(kv, slot);
    }
    for (uint64_t kv = 0; kv < n_kv; ++kv) append_head(kv, group);
    for (uint64_t kv = 0; kv < n_kv; ++kv) append_head(kv, group + 1);
    w.Tensor(Blk(l, "attn_qkv.weight"), qkv, (s.n_heads + 2 * n_kv) * hd, D);
    w.Tensor(Blk(l, "attn_output.weight"), weight(h(l, "self_attention.dense.weight")), D, D);
    w.Tensor(Blk(l, "ffn_up.weight"), weight(h(l, "mlp.dense_h_to_4h.weight")), F, D);
    const std::vector<float>& down = weight(h(l, "mlp.dense_4h_to_h.weight"));  // [D, F]
    if (options.powerinfer) {
      w.Tensor(Blk(l, "ffn_down_t.weight"), Transpose(down, D, F), F, D);
    } else {
      w.Tensor(Blk(l, "ffn_down.weight"), down, D, F);
    }
  }
  return w.Build();
}

std::vector<uint8_t> OptPowerInferGguf(const OptModel& hf, const GgufFamilyOptions& options) {
  const OptSpec& s = hf.spec;
  const uint64_t D = s.dim, F = s.n_ff, V = s.vocab, P = s.positions + 2;
  GgufFamilyOptions sparse = options;
  sparse.powerinfer = true;
  Writer w(sparse);
  w.String("general.architecture", "opt");
  w.String("general.name", "opt");
  w.Uint32("opt.context_length", static_cast<uint32_t>(P));
  w.Uint32("opt.embedding_length", static_cast<uint32_t>(D));
  w.Uint32("opt.block_count", static_cast<uint32_t>(s.n_layers));
  w.Uint32("opt.feed_forward_length", static_cast<uint32_t>(F));
  w.Uint32("opt.attention.head_count", static_cast<uint32_t>(s.n_heads));
  w.Uint32("general.file_type", 0);
  w.Vocabulary(HfVocabulary(hf.dir));
  w.Predictors(s.n_layers, D, F);

  auto weight = [&](const std::string& name) -> const std::vector<float>& {
    auto it = hf.weights.find(name);
    EXPECT_NE(it, hf.weights.end()) << name;
    static const std::vector<float> kNone;
    return it == hf.weights.end() ? kNone : it->second;
  };
  auto layer = [](int64_t l, const std::string& suffix) {
    return "layers." + std::to_string(l) + "." + suffix;
  };
  w.Tensor("token_embd.weight", weight("embed_tokens.weight"), V, D);
  w.Tensor("position_embd.weight", weight("embed_positions.weight"), P, D);
  w.Tensor("output_norm.weight", weight("final_layer_norm.weight"), 0, D);
  w.Tensor("output_norm.bias", weight("final_layer_norm.bias"), 0, D);
  if (!s.tied) w.Tensor("output.weight", weight("lm_head.weight"), V, D);
  for (int64_t l = 0; l < s.n_layers; ++l) {
    const struct {
      const char *hf, *gguf;
    } projections[] = {{"self_attn.q_proj", "attn_q"},
                       {"self_attn.k_proj", "attn_k"},
                       {"self_attn.v_proj", "attn_v"},
                       {"self_attn.out_proj", "attn_output"}};
    w.Tensor(Blk(l, "attn_norm.weight"), weight(layer(l, "self_attn_layer_norm.weight")), 0, D);
    w.Tensor(Blk(l, "attn_norm.bias"), weight(layer(l, "self_attn_layer_norm.bias")), 0, D);
    for (const auto& p : projections) {
      w.Tensor(Blk(l, std::string(p.gguf) + ".weight"),
               weight(layer(l, std::string(p.hf) + ".weight")), D, D);
      w.Tensor(Blk(l, std::string(p.gguf) + ".bias"), weight(layer(l, std::string(p.hf) + ".bias")),
               0, D);
    }
    w.Tensor(Blk(l, "ffn_norm.weight"), weight(layer(l, "final_layer_norm.weight")), 0, D);
    w.Tensor(Blk(l, "ffn_norm.bias"), weight(layer(l, "final_layer_norm.bias")), 0, D);
    w.Tensor(Blk(l, "ffn_up.weight"), weight(layer(l, "fc1.weight")), F, D);
    w.Tensor(Blk(l, "ffn_up.bias"), weight(layer(l, "fc1.bias")), 0, F);
    // fc2 [D, F] transposed, and its bias renamed with it ("ffn_down" in the name -> "ffn_down_t").
    w.Tensor(Blk(l, "ffn_down_t.weight"), Transpose(weight(layer(l, "fc2.weight")), D, F), F, D);
    w.Tensor(Blk(l, "ffn_down_t.bias"), weight(layer(l, "fc2.bias")), 0, D);
  }
  return w.Build();
}

}  // namespace pinfer::testing
