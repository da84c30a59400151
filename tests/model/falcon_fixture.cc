#include "tests/model/falcon_fixture.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "tests/convert/test_util.h"
#include "tests/model/fixture_math.h"

namespace pinfer::testing {
namespace {

namespace fs = std::filesystem;
using fixture::CausalAttention;
using fixture::LayerNorm;
using fixture::Linear;
using fixture::ReferenceGreedy;

std::string H(int64_t l, const std::string& suffix) {
  return "transformer.h." + std::to_string(l) + "." + suffix;
}

}  // namespace

FalconModel WriteFalconModel(const std::string& dir, const FalconSpec& spec) {
  fs::create_directories(dir);
  FalconModel m;
  m.dir = dir;
  m.spec = spec;
  const uint64_t D = spec.dim, F = 4 * spec.dim, V = spec.vocab;
  const uint64_t hd = D / spec.n_heads;
  const uint64_t qkv = (spec.n_heads + 2 * spec.n_kv_heads) * hd;
  fixture::RandomTensors tensors(spec.seed);
  const float matrix = 1.0f / std::sqrt(static_cast<float>(D));
  tensors.Add("transformer.word_embeddings.weight", {V, D}, 0.0f, 0.5f);
  for (int64_t l = 0; l < spec.n_layers; ++l) {
    for (const char* ln : spec.new_decoder_architecture
                              ? std::vector<const char*>{"ln_attn", "ln_mlp"}
                              : std::vector<const char*>{"input_layernorm"}) {
      tensors.Add(H(l, std::string(ln) + ".weight"), {D}, 1.0f, 0.1f);
      tensors.Add(H(l, std::string(ln) + ".bias"), {D}, 0.0f, 0.1f);
    }
    tensors.Add(H(l, "self_attention.query_key_value.weight"), {qkv, D}, 0.0f, matrix);
    tensors.Add(H(l, "self_attention.dense.weight"), {D, D}, 0.0f, matrix);
    tensors.Add(H(l, "mlp.dense_h_to_4h.weight"), {F, D}, 0.0f, matrix);
    tensors.Add(H(l, "mlp.dense_4h_to_h.weight"), {D, F}, 0.0f, 1.0f / std::sqrt(static_cast<float>(F)));
  }
  tensors.Add("transformer.ln_f.weight", {D}, 1.0f, 0.1f);
  tensors.Add("transformer.ln_f.bias", {D}, 0.0f, 0.1f);
  if (!spec.tied) tensors.Add("lm_head.weight", {V, D}, 0.0f, 0.5f);
  tensors.Write(dir + "/model.safetensors", "F32", [](const std::string& name) { return name; });
  m.weights = tensors.TakeWeights();

  m.config = {{"architectures", {"FalconForCausalLM"}},
              {"model_type", "falcon"},
              {"hidden_size", D},
              {"num_hidden_layers", spec.n_layers},
              {"num_attention_heads", spec.n_heads},
              {"multi_query", spec.n_kv_heads == 1},
              {"new_decoder_architecture", spec.new_decoder_architecture},
              {"parallel_attn", true},
              {"bias", false},
              {"alibi", false},
              {"layer_norm_epsilon", 1e-5},
              {"rope_theta", spec.rope_theta},
              {"max_position_embeddings", spec.positions},
              {"vocab_size", V},
              {"tie_word_embeddings", spec.tied},
              {"bos_token_id", 1256},
              {"eos_token_id", 1256}};
  if (spec.new_decoder_architecture) m.config["num_kv_heads"] = spec.n_kv_heads;
  WriteFileText(dir + "/config.json", m.config.dump(2));
  fs::copy_file(RepoPath("tests/data/bpe/falcon/tokenizer.json"), dir + "/tokenizer.json",
                fs::copy_options::overwrite_existing);
  return m;
}

namespace {

// HF's rotary embedding of one head at position p: x·cos + rotate_half(x)·sin, with
// rotate_half(x) = [-x2, x1] and the frequencies repeated over both halves.
void Rotate(double* x, int64_t hd, int64_t p, double theta) {
  const int64_t half = hd / 2;
  std::vector<double> out(static_cast<size_t>(hd));
  for (int64_t i = 0; i < hd; ++i) {
    const int64_t j = i % half;
    const double angle =
        static_cast<double>(p) * std::pow(theta, -2.0 * j / static_cast<double>(hd));
    const double rotated = i < half ? -x[i + half] : x[i - half];
    out[i] = x[i] * std::cos(angle) + rotated * std::sin(angle);
  }
  std::copy(out.begin(), out.end(), x);
}

}  // namespace

std::vector<double> FalconReferenceLogits(const FalconModel& m,
                                          const std::vector<int32_t>& tokens) {
  const FalconSpec& s = m.spec;
  const int64_t D = s.dim, nh = s.n_heads, kv = s.n_kv_heads, hd = D / nh, n = tokens.size();
  const int64_t group = nh / kv;  // queries per kv head
  auto W = [&](const std::string& name) -> const std::vector<float>& { return m.weights.at(name); };
  std::vector<std::vector<double>> h(n, std::vector<double>(D));
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t i = 0; i < D; ++i)
      h[t][i] = W("transformer.word_embeddings.weight")[tokens[t] * D + i];
  }
  for (int64_t l = 0; l < s.n_layers; ++l) {
    const std::string attn_ln = s.new_decoder_architecture ? "ln_attn" : "input_layernorm";
    const std::string mlp_ln = s.new_decoder_architecture ? "ln_mlp" : "input_layernorm";
    std::vector<std::vector<double>> q(n), k(n), v(n), attn_in(n), mlp_in(n);
    for (int64_t t = 0; t < n; ++t) {
      attn_in[t] = LayerNorm(h[t], W(H(l, attn_ln + ".weight")), W(H(l, attn_ln + ".bias")));
      mlp_in[t] = LayerNorm(h[t], W(H(l, mlp_ln + ".weight")), W(H(l, mlp_ln + ".bias")));
      // The fused rows: kv groups of `group` query heads, then the group's key and value.
      const std::vector<double> fused =
          Linear(W(H(l, "self_attention.query_key_value.weight")), nullptr, attn_in[t],
                 (nh + 2 * kv) * hd);
      q[t].resize(nh * hd);
      k[t].resize(kv * hd);
      v[t].resize(kv * hd);
      for (int64_t g = 0; g < kv; ++g) {
        const int64_t base = g * (group + 2) * hd;
        for (int64_t i = 0; i < group * hd; ++i) q[t][g * group * hd + i] = fused[base + i];
        for (int64_t i = 0; i < hd; ++i) {
          k[t][g * hd + i] = fused[base + group * hd + i];
          v[t][g * hd + i] = fused[base + (group + 1) * hd + i];
        }
      }
      for (int64_t head = 0; head < nh; ++head) Rotate(&q[t][head * hd], hd, t, s.rope_theta);
      for (int64_t head = 0; head < kv; ++head) Rotate(&k[t][head * hd], hd, t, s.rope_theta);
    }
    std::vector<std::vector<double>> next = h;
    for (int64_t t = 0; t < n; ++t) {
      const std::vector<double> attended =
          CausalAttention(q, k, v, t, nh, kv, hd, 1.0 / std::sqrt(static_cast<double>(hd)));
      const std::vector<double> o = Linear(W(H(l, "self_attention.dense.weight")), nullptr, attended, D);
      std::vector<double> a = Linear(W(H(l, "mlp.dense_h_to_4h.weight")), nullptr, mlp_in[t], 4 * D);
      for (double& e : a) e = 0.5 * e * (1.0 + std::erf(e / std::sqrt(2.0)));  // nn.GELU()
      const std::vector<double> y = Linear(W(H(l, "mlp.dense_4h_to_h.weight")), nullptr, a, D);
      // Parallel: h + attention(ln(h)) + mlp(ln(h)).
      for (int64_t i = 0; i < D; ++i) next[t][i] += o[i] + y[i];
    }
    h = std::move(next);
  }
  const std::vector<float>& head =
      W(s.tied ? "transformer.word_embeddings.weight" : "lm_head.weight");
  std::vector<double> logits;
  for (int64_t t = 0; t < n; ++t) {
    const std::vector<double> x =
        LayerNorm(h[t], W("transformer.ln_f.weight"), W("transformer.ln_f.bias"));
    const std::vector<double> row = Linear(head, nullptr, x, s.vocab);
    logits.insert(logits.end(), row.begin(), row.end());
  }
  return logits;
}

std::vector<int32_t> FalconReferenceGreedy(const FalconModel& m, std::vector<int32_t> prompt,
                                           int steps) {
  return ReferenceGreedy([&](const std::vector<int32_t>& t) { return FalconReferenceLogits(m, t); },
                         m.spec.vocab, std::move(prompt), steps);
}

}  // namespace pinfer::testing
