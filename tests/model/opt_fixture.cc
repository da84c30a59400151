#include "tests/model/opt_fixture.h"

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

std::string LayerName(int64_t l, const std::string& suffix) {
  return "layers." + std::to_string(l) + "." + suffix;
}

}  // namespace

OptModel WriteOptModel(const std::string& dir, const OptSpec& spec) {
  fs::create_directories(dir);
  OptModel m;
  m.dir = dir;
  m.spec = spec;
  const int64_t D = spec.dim, F = spec.n_ff, V = spec.vocab;
  fixture::RandomTensors tensors(spec.seed);
  const float matrix = 1.0f / std::sqrt(static_cast<float>(D));
  const uint64_t d = D, f = F, v = V;
  tensors.Add("embed_tokens.weight", {v, d}, 0.0f, 0.5f);
  // OPTLearnedPositionalEmbedding: max_position_embeddings + 2 rows.
  tensors.Add("embed_positions.weight", {static_cast<uint64_t>(spec.positions + 2), d}, 0.0f, 0.5f);
  for (int64_t l = 0; l < spec.n_layers; ++l) {
    tensors.Add(LayerName(l, "self_attn_layer_norm.weight"), {d}, 1.0f, 0.1f);
    tensors.Add(LayerName(l, "self_attn_layer_norm.bias"), {d}, 0.0f, 0.1f);
    for (const char* p : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
      tensors.Add(LayerName(l, std::string("self_attn.") + p + ".weight"), {d, d}, 0.0f, matrix);
      tensors.Add(LayerName(l, std::string("self_attn.") + p + ".bias"), {d}, 0.0f, 0.1f);
    }
    tensors.Add(LayerName(l, "final_layer_norm.weight"), {d}, 1.0f, 0.1f);
    tensors.Add(LayerName(l, "final_layer_norm.bias"), {d}, 0.0f, 0.1f);
    tensors.Add(LayerName(l, "fc1.weight"), {f, d}, 0.0f, matrix);
    // A negative mean: about a third of the neurons fire, as a sparse ReLU FFN.
    tensors.Add(LayerName(l, "fc1.bias"), {f}, -0.4f, 0.2f);
    tensors.Add(LayerName(l, "fc2.weight"), {d, f}, 0.0f, 1.0f / std::sqrt(static_cast<float>(F)));
    tensors.Add(LayerName(l, "fc2.bias"), {d}, 0.0f, 0.1f);
  }
  tensors.Add("final_layer_norm.weight", {d}, 1.0f, 0.1f);
  tensors.Add("final_layer_norm.bias", {d}, 0.0f, 0.1f);
  if (!spec.tied) tensors.Add("lm_head.weight", {v, d}, 0.0f, 0.5f);

  tensors.Write(dir + "/model.safetensors", spec.dtype, [&](const std::string& name) {
    return name == "lm_head.weight" ? name : spec.prefix + name;
  });
  m.weights = tensors.TakeWeights();

  m.bos = 1256;
  m.config = {{"architectures", {"OPTForCausalLM"}},
              {"model_type", "opt"},
              {"activation_function", "relu"},
              {"hidden_size", D},
              {"ffn_dim", F},
              {"num_hidden_layers", spec.n_layers},
              {"num_attention_heads", spec.n_heads},
              {"max_position_embeddings", spec.positions},
              {"vocab_size", V},
              {"word_embed_proj_dim", D},
              {"do_layer_norm_before", true},
              {"enable_bias", true},
              {"layer_norm_elementwise_affine", true},
              {"tie_word_embeddings", spec.tied},
              {"bos_token_id", m.bos},
              {"eos_token_id", m.bos},
              {"pad_token_id", 1},
              {"torch_dtype", "float32"}};
  WriteFileText(dir + "/config.json", m.config.dump(2));
  fs::copy_file(RepoPath("tests/data/bpe/gpt-2/tokenizer.json"), dir + "/tokenizer.json",
                fs::copy_options::overwrite_existing);
  return m;
}

std::vector<double> OptReferenceLogits(const OptModel& m, const std::vector<int32_t>& tokens) {
  const OptSpec& s = m.spec;
  const int64_t D = s.dim, H = s.n_heads, hd = D / H, n = static_cast<int64_t>(tokens.size());
  auto W = [&](const std::string& name) -> const std::vector<float>& { return m.weights.at(name); };
  // hidden = embed_tokens(ids) + embed_positions(positions + 2)
  std::vector<std::vector<double>> h(static_cast<size_t>(n), std::vector<double>(D));
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t i = 0; i < D; ++i) {
      h[t][i] = static_cast<double>(W("embed_tokens.weight")[tokens[t] * D + i]) +
                W("embed_positions.weight")[(t + 2) * D + i];
    }
  }
  const double scaling = 1.0 / std::sqrt(static_cast<double>(hd));
  for (int64_t l = 0; l < s.n_layers; ++l) {
    auto L = [&](const std::string& suffix) -> const std::vector<float>& {
      return W(LayerName(l, suffix));
    };
    std::vector<std::vector<double>> q(n), k(n), v(n);
    for (int64_t t = 0; t < n; ++t) {
      const std::vector<double> x =
          LayerNorm(h[t], L("self_attn_layer_norm.weight"), L("self_attn_layer_norm.bias"));
      q[t] = Linear(L("self_attn.q_proj.weight"), &L("self_attn.q_proj.bias"), x, D);
      for (double& e : q[t]) e *= scaling;
      k[t] = Linear(L("self_attn.k_proj.weight"), &L("self_attn.k_proj.bias"), x, D);
      v[t] = Linear(L("self_attn.v_proj.weight"), &L("self_attn.v_proj.bias"), x, D);
    }
    for (int64_t t = 0; t < n; ++t) {
      const std::vector<double> attended = CausalAttention(q, k, v, t, H, H, hd, 1.0);
      const std::vector<double> o =
          Linear(L("self_attn.out_proj.weight"), &L("self_attn.out_proj.bias"), attended, D);
      for (int64_t i = 0; i < D; ++i) h[t][i] += o[i];
    }
    for (int64_t t = 0; t < n; ++t) {
      const std::vector<double> x =
          LayerNorm(h[t], L("final_layer_norm.weight"), L("final_layer_norm.bias"));
      std::vector<double> a = Linear(L("fc1.weight"), &L("fc1.bias"), x, s.n_ff);
      for (double& e : a) e = std::max(e, 0.0);
      const std::vector<double> y = Linear(L("fc2.weight"), &L("fc2.bias"), a, D);
      for (int64_t i = 0; i < D; ++i) h[t][i] += y[i];
    }
  }
  const std::vector<float>& head = W(s.tied ? "embed_tokens.weight" : "lm_head.weight");
  std::vector<double> logits;
  logits.reserve(static_cast<size_t>(n * s.vocab));
  for (int64_t t = 0; t < n; ++t) {
    const std::vector<double> x =
        LayerNorm(h[t], W("final_layer_norm.weight"), W("final_layer_norm.bias"));
    const std::vector<double> row = Linear(head, nullptr, x, s.vocab);
    logits.insert(logits.end(), row.begin(), row.end());
  }
  return logits;
}

std::vector<int32_t> OptReferenceGreedy(const OptModel& m, std::vector<int32_t> prompt, int steps) {
  return ReferenceGreedy([&](const std::vector<int32_t>& t) { return OptReferenceLogits(m, t); },
                         m.spec.vocab, std::move(prompt), steps);
}

}  // namespace pinfer::testing
