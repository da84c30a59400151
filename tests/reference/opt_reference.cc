// OptForward: HF transformers' OPTForCausalLM, written from the architecture
// (modeling_opt's semantics), one tensor operation after another:
//   h = embed_tokens[tokens] + embed_positions[positions + 2]      (OPT's
//   learned offset) per layer (pre-norm, do_layer_norm_before):
//     h += out_proj(attention(q_proj(n) · head_dim^-0.5, k_proj(n),
//     v_proj(n))), n = LN(h) h += fc2(relu(fc1(n))), n = LN(h)
//   logits = lm_head(LN_final(h))    (lm_head = embed_tokens when
//   tie_word_embeddings, OPT's default)
// Every projection has its bias; LayerNorm is torch's (eps 1e-5, weight and
// bias). Checkpoints saved from OPTForCausalLM name the decoder
// "model.decoder.", the original ones "decoder.".
#include <cmath>
#include <stdexcept>

#include "tests/reference/torch_reference.h"

namespace pinfer::reference {
namespace {

using nlohmann::json;

int64_t Int(const json& c, const char* key, int64_t fallback) {
  const auto it = c.find(key);
  return it == c.end() || it->is_null() ? fallback : it->get<int64_t>();
}

bool Bool(const json& c, const char* key, bool fallback) {
  const auto it = c.find(key);
  return it == c.end() || it->is_null() ? fallback : it->get<bool>();
}

torch::Tensor Affine(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  return torch::matmul(x, w.t()) + b;
}

torch::Tensor LayerNorm(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  const torch::Tensor mean = x.mean(-1, /*keepdim=*/true);
  const torch::Tensor var = (x - mean).pow(2).mean(-1, /*keepdim=*/true);
  return (x - mean) * torch::rsqrt(var + 1e-5) * w + b;
}

}  // namespace

torch::Tensor OptForward(const HfCheckpoint& checkpoint, const std::vector<int64_t>& tokens) {
  const json& c = checkpoint.config;
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t dim = Int(c, "hidden_size", 0), heads = Int(c, "num_attention_heads", 0);
  const int64_t head_dim = dim / heads, layers = Int(c, "num_hidden_layers", 0);
  if (!Bool(c, "do_layer_norm_before", true) || Int(c, "word_embed_proj_dim", dim) != dim) {
    throw std::runtime_error("config: OPT-350m's post-norm / projections are not implemented");
  }
  const std::string d =
      checkpoint.tensors.count("decoder.embed_tokens.weight") != 0 ? "decoder." : "model.decoder.";
  auto at = [&](const std::string& name) -> const torch::Tensor& {
    return checkpoint.at(d + name);
  };
  const torch::Tensor ids = torch::tensor(tokens, torch::kInt64);
  torch::Tensor h = at("embed_tokens.weight").index_select(0, ids) +
                    at("embed_positions.weight").index_select(0, torch::arange(n) + 2);
  const torch::Tensor i = torch::arange(n).unsqueeze(1), j = torch::arange(n).unsqueeze(0);
  const torch::Tensor hidden = (j > i);
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    auto proj = [&](const torch::Tensor& x, const std::string& name) {
      return Affine(x, at(p + name + ".weight"), at(p + name + ".bias"));
    };
    torch::Tensor x =
        LayerNorm(h, at(p + "self_attn_layer_norm.weight"), at(p + "self_attn_layer_norm.bias"));
    const torch::Tensor q = (proj(x, "self_attn.q_proj") / std::sqrt(double(head_dim)))
                                .view({n, heads, head_dim})
                                .permute({1, 0, 2});
    const torch::Tensor k =
        proj(x, "self_attn.k_proj").view({n, heads, head_dim}).permute({1, 0, 2});
    const torch::Tensor v =
        proj(x, "self_attn.v_proj").view({n, heads, head_dim}).permute({1, 0, 2});
    torch::Tensor scores = torch::matmul(q, k.transpose(1, 2)).masked_fill(hidden, -INFINITY);
    const torch::Tensor attn =
        torch::matmul(torch::softmax(scores, -1), v).permute({1, 0, 2}).reshape({n, dim});
    h = h + proj(attn, "self_attn.out_proj");
    x = LayerNorm(h, at(p + "final_layer_norm.weight"), at(p + "final_layer_norm.bias"));
    h = h + proj(torch::relu(proj(x, "fc1")), "fc2");
  }
  h = LayerNorm(h, at("final_layer_norm.weight"), at("final_layer_norm.bias"));
  const bool tie = Bool(c, "tie_word_embeddings", true);
  const torch::Tensor& head = tie ? at("embed_tokens.weight") : checkpoint.at("lm_head.weight");
  return torch::matmul(h, head.t()).to(torch::kFloat32).contiguous();
}

}  // namespace pinfer::reference
