// LlamaForward: HF transformers' LlamaForCausalLM / MistralForCausalLM, written from the
// architecture (modeling_llama's semantics), one plain tensor operation after another:
//   h = embed_tokens[tokens]
//   per layer: h += o_proj(attention(rope(q_proj(n)), rope(k_proj(n)), v_proj(n))), n = rms(h)·w
//              h += down_proj(act(gate_proj(n)) * up_proj(n)),                       n = rms(h)·w
//   logits = lm_head(rms(h)·norm)   (lm_head = embed_tokens when tie_word_embeddings)
// RoPE is HF's: the head's first and second halves pair up (rotate_half), with the inverse
// frequencies theta^(-2i/d), rescaled by rope_scaling ("linear": / factor; "llama3": the
// wavelength-dependent scaling of Llama 3.1). Attention is causal, grouped-query (query head h
// reads key/value head h / (heads / kv_heads)), and with a sliding_window W a position sees the
// last W positions only (itself included), as Mistral's mask does.
#include <cmath>
#include <numbers>
#include <stdexcept>

#include "tests/reference/torch_reference.h"

namespace pinfer::reference {
namespace {

using nlohmann::json;

const json* Find(const json& object, const char* key) {
  const auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

double Number(const json& object, const char* key, double fallback) {
  const json* v = Find(object, key);
  if (v == nullptr) return fallback;
  if (!v->is_number()) throw std::runtime_error(std::string("config: '") + key + "' is no number");
  return v->get<double>();
}

double RequiredNumber(const json& object, const char* key) {
  if (Find(object, key) == nullptr) {
    throw std::runtime_error(std::string("config: rope_scaling lacks '") + key + "'");
  }
  return Number(object, key, 0.0);
}

int64_t Int(const json& object, const char* key, int64_t fallback) {
  return static_cast<int64_t>(Number(object, key, static_cast<double>(fallback)));
}

// [head_dim / 2] inverse frequencies (transformers' ROPE_INIT_FUNCTIONS).
torch::Tensor InverseFrequencies(const json& config, int64_t head_dim) {
  const double theta = Number(config, "rope_theta", 10000.0);
  torch::Tensor inv =
      1.0 / torch::pow(theta, torch::arange(0, head_dim, 2, torch::kFloat64) / head_dim);
  const json* scaling = Find(config, "rope_scaling");
  if (scaling == nullptr) return inv;
  const json* type = Find(*scaling, "rope_type");
  if (type == nullptr) type = Find(*scaling, "type");
  const std::string kind = type != nullptr && type->is_string() ? type->get<std::string>() : "";
  if (kind == "default") return inv;
  const double factor = RequiredNumber(*scaling, "factor");
  if (kind == "linear") return inv / factor;
  if (kind != "llama3") throw std::runtime_error("config: rope_scaling type '" + kind + "'");
  const double low = RequiredNumber(*scaling, "low_freq_factor");
  const double high = RequiredNumber(*scaling, "high_freq_factor");
  const double original = RequiredNumber(*scaling, "original_max_position_embeddings");
  const double low_freq_wavelen = original / low, high_freq_wavelen = original / high;
  const torch::Tensor wavelen = 2 * std::numbers::pi / inv;
  // Long wavelengths (low frequencies) are divided by factor, short ones kept, and those between
  // interpolated by where original / wavelen falls between low and high.
  torch::Tensor scaled = torch::where(wavelen > low_freq_wavelen, inv / factor, inv);
  const torch::Tensor smooth = (original / wavelen - low) / (high - low);
  const torch::Tensor smoothed = (1 - smooth) * scaled / factor + smooth * scaled;
  const torch::Tensor medium = (wavelen >= high_freq_wavelen) & (wavelen <= low_freq_wavelen);
  return torch::where(medium, smoothed, scaled);
}

torch::Tensor RmsNorm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  return weight * (x * torch::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + eps));
}

// [a, b, c, d] -> [-c, -d, a, b] over the last dimension.
torch::Tensor RotateHalf(const torch::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

// x: [n, heads, head_dim] at positions 0..n-1.
torch::Tensor ApplyRope(const torch::Tensor& x, const torch::Tensor& inv_freq) {
  const torch::Tensor pos = torch::arange(x.size(0), torch::kFloat64);
  const torch::Tensor freqs = torch::outer(pos, inv_freq);
  const torch::Tensor emb = torch::cat({freqs, freqs}, -1).unsqueeze(1);  // [n, 1, head_dim]
  return x * emb.cos() + RotateHalf(x) * emb.sin();
}

torch::Tensor Linear(const torch::Tensor& x, const torch::Tensor& weight) {
  return torch::matmul(x, weight.t());
}

}  // namespace

torch::Tensor LlamaForward(const HfCheckpoint& checkpoint, const std::vector<int64_t>& tokens) {
  const json& c = checkpoint.config;
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t dim = Int(c, "hidden_size", 0), heads = Int(c, "num_attention_heads", 0);
  const int64_t kv_heads = Int(c, "num_key_value_heads", heads);
  const int64_t head_dim = Int(c, "head_dim", dim / heads);
  const int64_t layers = Int(c, "num_hidden_layers", 0);
  const double eps = Number(c, "rms_norm_eps", 1e-6);
  const json* act = Find(c, "hidden_act");
  const std::string hidden_act = act != nullptr ? act->get<std::string>() : "silu";
  if (hidden_act != "silu" && hidden_act != "relu") {
    throw std::runtime_error("config: hidden_act '" + hidden_act + "' is not implemented");
  }
  const torch::Tensor inv_freq = InverseFrequencies(c, head_dim);

  // The mask: key j is visible from query i when j <= i and, with a window W, i - j < W.
  const torch::Tensor i = torch::arange(n).unsqueeze(1), j = torch::arange(n).unsqueeze(0);
  torch::Tensor visible = j <= i;
  if (const json* window = Find(c, "sliding_window")) visible &= (i - j) < window->get<int64_t>();

  const torch::Tensor& embed = checkpoint.at("model.embed_tokens.weight");
  for (int64_t id : tokens) {
    if (id >= embed.size(0)) throw std::runtime_error("token " + std::to_string(id) +
                                                      " is outside the vocabulary");
  }
  torch::Tensor h = embed.index_select(0, torch::tensor(tokens, torch::kInt64));
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    torch::Tensor x = RmsNorm(h, checkpoint.at(p + "input_layernorm.weight"), eps);
    torch::Tensor q = Linear(x, checkpoint.at(p + "self_attn.q_proj.weight"))
                          .view({n, heads, head_dim});
    torch::Tensor k = Linear(x, checkpoint.at(p + "self_attn.k_proj.weight"))
                          .view({n, kv_heads, head_dim});
    torch::Tensor v = Linear(x, checkpoint.at(p + "self_attn.v_proj.weight"))
                          .view({n, kv_heads, head_dim});
    q = ApplyRope(q, inv_freq).permute({1, 0, 2});  // [heads, n, head_dim]
    k = ApplyRope(k, inv_freq).permute({1, 0, 2}).repeat_interleave(heads / kv_heads, 0);
    v = v.permute({1, 0, 2}).repeat_interleave(heads / kv_heads, 0);
    torch::Tensor scores = torch::matmul(q, k.transpose(1, 2)) / std::sqrt(double(head_dim));
    scores = scores.masked_fill(visible.logical_not(), -INFINITY);
    torch::Tensor attn = torch::matmul(torch::softmax(scores, -1), v);  // [heads, n, head_dim]
    attn = attn.permute({1, 0, 2}).reshape({n, heads * head_dim});
    h = h + Linear(attn, checkpoint.at(p + "self_attn.o_proj.weight"));

    x = RmsNorm(h, checkpoint.at(p + "post_attention_layernorm.weight"), eps);
    torch::Tensor gate = Linear(x, checkpoint.at(p + "mlp.gate_proj.weight"));
    gate = hidden_act == "silu" ? gate * torch::sigmoid(gate) : torch::relu(gate);
    const torch::Tensor up = Linear(x, checkpoint.at(p + "mlp.up_proj.weight"));
    h = h + Linear(gate * up, checkpoint.at(p + "mlp.down_proj.weight"));
  }
  h = RmsNorm(h, checkpoint.at("model.norm.weight"), eps);
  const json* tied = Find(c, "tie_word_embeddings");
  const bool tie = tied != nullptr && tied->get<bool>();
  const torch::Tensor& head = tie ? embed : checkpoint.at("lm_head.weight");
  return Linear(h, head).to(torch::kFloat32).contiguous();
}

}  // namespace pinfer::reference
