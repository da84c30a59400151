#include "tests/place/tiny_profile.h"

#include <cmath>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/reference_kernels.h"
#include "runtime/model/model_config.h"
#include "runtime/model/tensor_names.h"
#include "runtime/model/vocabulary.h"

namespace pinfer::testing_support {
namespace {

namespace ref = cpu::reference;

// A weight matrix decoded to f32 [rows, cols].
struct Matrix {
  int64_t rows = 0, cols = 0;
  std::vector<float> data;
  cpu::MatrixView View() const { return cpu::MakeMatrixView(DType::kF32, rows, cols, data.data()); }
};

absl::StatusOr<Matrix> Load(const PiFile& file, const std::string& name) {
  absl::StatusOr<const TensorInfo*> t = file.Get(name);
  if (!t.ok()) return t.status();
  Matrix m;
  m.rows = static_cast<int64_t>((*t)->rows());
  m.cols = static_cast<int64_t>((*t)->cols());
  m.data.resize(static_cast<size_t>(m.rows * m.cols));
  const cpu::MatrixView view =
      cpu::MakeMatrixView((*t)->dtype, m.rows, m.cols, file.Data(**t).data());
  ref::DecodeRows(view, 0, m.rows, m.data.data());
  return m;
}

struct Layer {
  Matrix attn_norm, q, k, v, o, ffn_norm, gate, up, down_t;
};

}  // namespace

absl::StatusOr<TinyRun> ProfileBySelfGeneration(const PiFile& model, int sequences, int length,
                                                double temperature, uint64_t seed) {
  absl::StatusOr<ModelConfig> config = ModelConfig::FromMetadata(model.metadata());
  if (!config.ok()) return config.status();
  absl::StatusOr<Vocabulary> vocab = Vocabulary::FromMetadata(model.metadata());
  if (!vocab.ok()) return vocab.status();
  const ModelConfig& c = *config;
  if (length > c.context_length) {
    return absl::InvalidArgumentError("sequence longer than the model's context");
  }
  std::vector<Layer> layers(static_cast<size_t>(c.n_layers));
  for (int l = 0; l < c.n_layers; ++l) {
    Layer& L = layers[static_cast<size_t>(l)];
    const std::pair<Matrix*, std::string> parts[] = {{&L.attn_norm, tensor_names::AttnNorm(l)},
                                                     {&L.q, tensor_names::AttnQ(l)},
                                                     {&L.k, tensor_names::AttnK(l)},
                                                     {&L.v, tensor_names::AttnV(l)},
                                                     {&L.o, tensor_names::AttnOutput(l)},
                                                     {&L.ffn_norm, tensor_names::FfnNorm(l)},
                                                     {&L.gate, tensor_names::FfnGate(l)},
                                                     {&L.up, tensor_names::FfnUp(l)},
                                                     {&L.down_t, tensor_names::FfnDownT(l)}};
    for (const auto& [matrix, name] : parts) {
      absl::StatusOr<Matrix> m = Load(model, name);
      if (!m.ok()) return m.status();
      *matrix = *std::move(m);
    }
  }
  absl::StatusOr<Matrix> embedding = Load(model, tensor_names::kTokenEmbedding);
  if (!embedding.ok()) return embedding.status();
  absl::StatusOr<Matrix> output_norm = Load(model, tensor_names::kOutputNorm);
  if (!output_norm.ok()) return output_norm.status();
  absl::StatusOr<Matrix> output =
      model.Find(tensor_names::kOutput) ? Load(model, tensor_names::kOutput) : embedding;
  if (!output.ok()) return output.status();

  TinyRun run;
  ActivationProfile& p = run.profile;
  p.model_digest = model.ContentDigestHex();
  p.n_layers = c.n_layers;
  p.n_ff = c.n_ff;
  p.context = length;
  p.datasets = {absl::StrCat("self-generated:", sequences, "x", length, ":t", temperature)};
  p.fire_count.assign(static_cast<size_t>(c.n_layers * c.n_ff), 0);
  p.mean_abs.assign(static_cast<size_t>(c.n_layers * c.n_ff), 0.0f);
  p.threshold.assign(static_cast<size_t>(c.n_layers), 0.0f);
  std::vector<double> abs_sum(p.mean_abs.size(), 0.0);

  const int64_t d = c.dim, kv = c.kv_dim(), ff = c.n_ff;
  std::vector<float> x(d), h(d), q(c.q_dim()), att(c.q_dim()), tmp(d), g(ff), u(ff), a(ff),
      logits(c.vocab_size);
  std::vector<std::vector<float>> k_cache(layers.size()), v_cache(layers.size());
  std::mt19937_64 rng(seed);
  int64_t zeros = 0, activations = 0;
  const cpu::AttentionShape shape{c.n_heads, c.n_kv_heads, c.head_dim, kv};
  auto norm_act = [&](std::vector<float>& vec) {
    for (float& e : vec) e = c.norm_act.ApplyToNorm(e);
  };

  for (int s = 0; s < sequences; ++s) {
    for (auto& cache : k_cache) cache.assign(static_cast<size_t>(length * kv), 0.0f);
    for (auto& cache : v_cache) cache.assign(static_cast<size_t>(length * kv), 0.0f);
    int32_t token = vocab->bos_id;
    std::vector<int32_t> generated;
    for (int pos = 0; pos < length; ++pos) {
      std::copy_n(embedding->data.begin() + static_cast<int64_t>(token) * d, d, x.begin());
      for (size_t l = 0; l < layers.size(); ++l) {
        Layer& L = layers[l];
        ref::RmsNorm(x.data(), L.attn_norm.data.data(), d, static_cast<float>(c.rms_eps), h.data());
        norm_act(h);
        float* kp = k_cache[l].data() + pos * kv;
        float* vp = v_cache[l].data() + pos * kv;
        ref::MatVec(L.q.View(), h.data(), q.data());
        ref::MatVec(L.k.View(), h.data(), kp);
        ref::MatVec(L.v.View(), h.data(), vp);
        ref::RopeInterleaved(q.data(), c.n_heads, c.head_dim, pos, c.rope_theta);
        ref::RopeInterleaved(kp, c.n_kv_heads, c.head_dim, pos, c.rope_theta);
        ref::Attention(shape, q.data(), k_cache[l].data(), v_cache[l].data(), pos, 1, att.data());
        ref::MatVec(L.o.View(), att.data(), tmp.data());
        ref::Add(tmp.data(), d, x.data());
        ref::RmsNorm(x.data(), L.ffn_norm.data.data(), d, static_cast<float>(c.rms_eps), h.data());
        norm_act(h);
        ref::MatVec(L.gate.View(), h.data(), g.data());
        ref::MatVec(L.up.View(), h.data(), u.data());
        for (int64_t i = 0; i < ff; ++i) {
          a[i] = c.ffn_act.Combine(g[i], u[i]);
          const size_t cell = l * static_cast<size_t>(ff) + static_cast<size_t>(i);
          if (a[i] != 0.0f)
            ++p.fire_count[cell];
          else
            ++zeros;
          abs_sum[cell] += std::fabs(a[i]);
        }
        activations += ff;
        ref::MatVecTransposedAccumulate(L.down_t.View(), a.data(), x.data());
      }
      ++p.tokens;
      ref::RmsNorm(x.data(), output_norm->data.data(), d, static_cast<float>(c.rms_eps), h.data());
      ref::MatVec(output->View(), h.data(), logits.data());
      if (temperature <= 0) {
        token =
            static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      } else {
        for (float& l : logits) l = static_cast<float>(l / temperature);
        ref::Softmax(logits.data(), c.vocab_size);
        std::discrete_distribution<int32_t> pick(logits.begin(), logits.end());
        token = pick(rng);
      }
      generated.push_back(token);
    }
    run.sequences.push_back(std::move(generated));
  }
  for (size_t i = 0; i < abs_sum.size(); ++i) {
    p.mean_abs[i] = static_cast<float>(abs_sum[i] / static_cast<double>(p.tokens));
  }
  run.zero_fraction = static_cast<double>(zeros) / static_cast<double>(activations);
  if (absl::Status st = p.Validate(); !st.ok()) return st;
  return run;
}

absl::StatusOr<std::string> DecodeTokens(const PiFile& model, const std::vector<int32_t>& tokens) {
  absl::StatusOr<Vocabulary> vocab = Vocabulary::FromMetadata(model.metadata());
  if (!vocab.ok()) return vocab.status();
  std::string text;
  for (int32_t t : tokens) {
    const std::string& piece = vocab->pieces.at(static_cast<size_t>(t));
    unsigned byte = 0;
    if (piece.size() == 6 && piece.starts_with("<0x") && piece.back() == '>' &&
        absl::SimpleHexAtoi(piece.substr(3, 2), &byte)) {
      text.push_back(static_cast<char>(byte));
    } else {
      text += absl::StrReplaceAll(piece, {{"\xE2\x96\x81", " "}});
    }
  }
  return text;
}

}  // namespace pinfer::testing_support
