// FalconForward: HF transformers' FalconForCausalLM, written from the
// architecture (modeling_falcon's semantics) for its parallel layers
// (Falcon-7B, -40B):
//   h = word_embeddings[tokens]
//   per layer: h += dense(attention(qkv(a))) +
//   dense_4h_to_h(gelu(dense_h_to_4h(m)))
//              a = ln_attn(h), m = ln_mlp(h) (new_decoder_architecture, two
//              LayerNorms), or a = m = input_layernorm(h) (one)
//   logits = lm_head(ln_f(h))   (lm_head = word_embeddings when
//   tie_word_embeddings, the default)
// query_key_value's rows are kv groups (new_decoder_architecture: num_kv_heads
// of them, each heads/num_kv_heads queries, a key and a value; multi_query: one
// group; else one per head). RoPE is HF's rotate_half form (rope_theta); GELU
// the exact erf one (nn.GELU); no biases
// ("bias": false, as the released models).
#include <cmath>
#include <stdexcept>

#include "tests/reference/torch_reference.h"

namespace pinfer::reference {
namespace {

using nlohmann::json;

double Number(const json& c, const char* key, double fallback) {
  const auto it = c.find(key);
  return it == c.end() || it->is_null() ? fallback : it->get<double>();
}

bool Bool(const json& c, const char* key, bool fallback) {
  const auto it = c.find(key);
  return it == c.end() || it->is_null() ? fallback : it->get<bool>();
}

torch::Tensor LayerNorm(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                        double eps) {
  const torch::Tensor mean = x.mean(-1, /*keepdim=*/true);
  const torch::Tensor var = (x - mean).pow(2).mean(-1, /*keepdim=*/true);
  return (x - mean) * torch::rsqrt(var + eps) * w + b;
}

torch::Tensor RotateHalf(const torch::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

}  // namespace

torch::Tensor FalconForward(const HfCheckpoint& checkpoint, const std::vector<int64_t>& tokens) {
  const json& c = checkpoint.config;
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t dim = static_cast<int64_t>(Number(c, "hidden_size", 0));
  const int64_t heads = static_cast<int64_t>(Number(c, "num_attention_heads", 0));
  const int64_t layers = static_cast<int64_t>(Number(c, "num_hidden_layers", 0));
  const bool new_decoder = Bool(c, "new_decoder_architecture", false);
  const bool multi_query = Bool(c, "multi_query", true);
  if (!new_decoder && !Bool(c, "parallel_attn", true)) {
    throw std::runtime_error("config: sequential Falcon layers are not implemented");
  }
  if (Bool(c, "bias", false) || Bool(c, "alibi", false)) {
    throw std::runtime_error("config: Falcon biases / ALiBi are not implemented");
  }
  const int64_t kv = new_decoder || !multi_query
                         ? static_cast<int64_t>(Number(c, "num_kv_heads", double(heads)))
                         : 1;
  const int64_t head_dim = dim / heads, group = heads / kv;
  const double eps = Number(c, "layer_norm_epsilon", 1e-5);
  const torch::Tensor inv_freq =
      1.0 / torch::pow(Number(c, "rope_theta", 10000.0),
                       torch::arange(0, head_dim, 2, torch::kFloat64) / head_dim);
  const torch::Tensor freqs = torch::outer(torch::arange(n, torch::kFloat64), inv_freq);
  const torch::Tensor emb = torch::cat({freqs, freqs}, -1).unsqueeze(1);  // [n, 1, head_dim]
  auto rope = [&](const torch::Tensor& x) { return x * emb.cos() + RotateHalf(x) * emb.sin(); };
  const torch::Tensor i = torch::arange(n).unsqueeze(1), j = torch::arange(n).unsqueeze(0);
  const torch::Tensor hidden = j > i;

  const torch::Tensor& embed = checkpoint.at("transformer.word_embeddings.weight");
  torch::Tensor h = embed.index_select(0, torch::tensor(tokens, torch::kInt64));
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = "transformer.h." + std::to_string(l) + ".";
    auto ln = [&](const std::string& name) {
      return LayerNorm(h, checkpoint.at(p + name + ".weight"), checkpoint.at(p + name + ".bias"),
                       eps);
    };
    const bool two = checkpoint.tensors.count(p + "ln_attn.weight") != 0;
    const torch::Tensor a = ln(two ? "ln_attn" : "input_layernorm");
    const torch::Tensor m = two ? ln("ln_mlp") : a;
    const torch::Tensor fused =
        torch::matmul(a, checkpoint.at(p + "self_attention.query_key_value.weight").t())
            .view({n, kv, group + 2, head_dim});
    torch::Tensor q = fused.narrow(2, 0, group).reshape({n, heads, head_dim});
    torch::Tensor k = fused.narrow(2, group, 1).reshape({n, kv, head_dim});
    torch::Tensor v = fused.narrow(2, group + 1, 1).reshape({n, kv, head_dim});
    q = rope(q).permute({1, 0, 2});
    k = rope(k).permute({1, 0, 2}).repeat_interleave(group, 0);
    v = v.permute({1, 0, 2}).repeat_interleave(group, 0);
    torch::Tensor scores = torch::matmul(q, k.transpose(1, 2)) / std::sqrt(double(head_dim));
    scores = scores.masked_fill(hidden, -INFINITY);
    const torch::Tensor attn =
        torch::matmul(torch::softmax(scores, -1), v).permute({1, 0, 2}).reshape({n, dim});
    const torch::Tensor up = torch::matmul(m, checkpoint.at(p + "mlp.dense_h_to_4h.weight").t());
    const torch::Tensor gelu = 0.5 * up * (1.0 + torch::erf(up / std::sqrt(2.0)));
    h = h + torch::matmul(attn, checkpoint.at(p + "self_attention.dense.weight").t()) +
        torch::matmul(gelu, checkpoint.at(p + "mlp.dense_4h_to_h.weight").t());
  }
  h = LayerNorm(h, checkpoint.at("transformer.ln_f.weight"), checkpoint.at("transformer.ln_f.bias"),
                eps);
  const torch::Tensor& head =
      Bool(c, "tie_word_embeddings", true) ? embed : checkpoint.at("lm_head.weight");
  return torch::matmul(h, head.t()).to(torch::kFloat32).contiguous();
}

}  // namespace pinfer::reference
