#include "tests/synth/reference_forward.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "format/pi_file.h"
#include "format/quant.h"
#include "runtime/model/model_config.h"
#include "runtime/model/tensor_names.h"

namespace pinfer::synth::testing {
namespace {

namespace tn = tensor_names;

struct Matrix {
  int64_t rows = 0, cols = 0;
  std::vector<float> values;
  const float* row(int64_t r) const { return values.data() + r * cols; }
};

absl::StatusOr<Matrix> Decode(const PiFile& file, const std::string& name) {
  absl::StatusOr<const TensorInfo*> info = file.Get(name);
  if (!info.ok()) return info.status();
  Matrix m;
  m.rows = static_cast<int64_t>((*info)->rows());
  m.cols = static_cast<int64_t>((*info)->cols());
  m.values.resize(static_cast<size_t>(m.rows * m.cols));
  std::span<const uint8_t> data = file.Data(**info);
  const uint64_t row_bytes = data.size() / static_cast<uint64_t>(m.rows);
  for (int64_t r = 0; r < m.rows; ++r) {
    if (absl::Status s = DecodeRow(data.data() + r * row_bytes, static_cast<size_t>(m.cols),
                                   (*info)->dtype, m.values.data() + r * m.cols);
        !s.ok()) {
      return s;
    }
  }
  return m;
}

void MatVec(const Matrix& w, const std::vector<float>& x, std::vector<float>& y) {
  y.assign(static_cast<size_t>(w.rows), 0.0f);
  for (int64_t r = 0; r < w.rows; ++r) {
    const float* row = w.row(r);
    double sum = 0;
    for (int64_t c = 0; c < w.cols; ++c)
      sum += static_cast<double>(row[c]) * x[static_cast<size_t>(c)];
    y[static_cast<size_t>(r)] = static_cast<float>(sum);
  }
}

std::vector<float> RmsNorm(const std::vector<float>& x, const Matrix& weight, double eps) {
  double ms = 0;
  for (float v : x) ms += static_cast<double>(v) * v;
  ms /= static_cast<double>(x.size());
  const double scale = 1.0 / std::sqrt(ms + eps);
  std::vector<float> out(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    out[i] = static_cast<float>(x[i] * scale * weight.values[i]);
  return out;
}

// Rotates interleaved pairs (x[2i], x[2i+1]) of every head by pos·theta^(-2i/head_dim).
void Rope(std::vector<float>& x, int64_t head_dim, int64_t pos, double theta) {
  for (size_t h = 0; h < x.size() / static_cast<size_t>(head_dim); ++h) {
    float* v = x.data() + h * static_cast<size_t>(head_dim);
    for (int64_t i = 0; i < head_dim / 2; ++i) {
      const double angle =
          static_cast<double>(pos) *
          std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
      const double c = std::cos(angle), s = std::sin(angle);
      const double a = v[2 * i], b = v[2 * i + 1];
      v[2 * i] = static_cast<float>(a * c - b * s);
      v[2 * i + 1] = static_cast<float>(a * s + b * c);
    }
  }
}

struct Layer {
  Matrix attn_norm, q, k, v, o, ffn_norm, gate, up, down_t;
};

}  // namespace

absl::StatusOr<FiringMeasurement> MeasureFiring(const std::string& model_path, int sequences,
                                                int length, uint64_t seed, int64_t bias_dims) {
  absl::StatusOr<std::unique_ptr<PiFile>> file = PiFile::Open(model_path);
  if (!file.ok()) return file.status();
  absl::StatusOr<ModelConfig> config = ModelConfig::FromMetadata((*file)->metadata());
  if (!config.ok()) return config.status();
  const ModelConfig& c = *config;
  std::vector<Layer> layers(static_cast<size_t>(c.n_layers));
  for (int l = 0; l < c.n_layers; ++l) {
    Layer& L = layers[static_cast<size_t>(l)];
    const std::pair<Matrix*, std::string> parts[] = {{&L.attn_norm, tn::AttnNorm(l)},
                                                     {&L.q, tn::AttnQ(l)},
                                                     {&L.k, tn::AttnK(l)},
                                                     {&L.v, tn::AttnV(l)},
                                                     {&L.o, tn::AttnOutput(l)},
                                                     {&L.ffn_norm, tn::FfnNorm(l)},
                                                     {&L.gate, tn::FfnGate(l)},
                                                     {&L.up, tn::FfnUp(l)},
                                                     {&L.down_t, tn::FfnDownT(l)}};
    for (const auto& [matrix, name] : parts) {
      absl::StatusOr<Matrix> m = Decode(**file, name);
      if (!m.ok()) return m.status();
      *matrix = *std::move(m);
    }
  }
  absl::StatusOr<Matrix> embedding = Decode(**file, tn::kTokenEmbedding);
  absl::StatusOr<Matrix> output_norm = Decode(**file, tn::kOutputNorm);
  absl::StatusOr<Matrix> output = Decode(**file, tn::kOutput);
  if (!embedding.ok()) return embedding.status();
  if (!output_norm.ok()) return output_norm.status();
  if (!output.ok()) return output.status();

  const double threshold = c.ffn_act.param;
  const int64_t d = c.dim, hd = c.head_dim, group = c.n_heads / c.n_kv_heads;
  FiringMeasurement m;
  m.fired.assign(static_cast<size_t>(c.n_layers),
                 std::vector<int64_t>(static_cast<size_t>(c.n_ff), 0));
  m.content_energy.assign(static_cast<size_t>(c.n_layers), 0.0);
  auto observe = [&m](float v) {
    if (!std::isfinite(v)) m.finite = false;
    m.max_abs_activation = std::max(m.max_abs_activation, static_cast<double>(std::fabs(v)));
  };
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> token(0, c.vocab_size - 1);
  std::vector<float> q, k, v, attn, y, g, u, logits;
  for (int s = 0; s < sequences; ++s) {
    // Per layer, the keys and values of the positions so far.
    std::vector<std::vector<std::vector<float>>> keys(layers.size()), values(layers.size());
    for (int pos = 0; pos < length; ++pos) {
      const int64_t id = token(rng);
      std::vector<float> x(embedding->row(id), embedding->row(id) + d);
      std::vector<std::vector<int32_t>>& active = m.active.emplace_back(layers.size());
      for (size_t l = 0; l < layers.size(); ++l) {
        const Layer& L = layers[l];
        std::vector<float> h = RmsNorm(x, L.attn_norm, c.rms_eps);
        MatVec(L.q, h, q);
        MatVec(L.k, h, k);
        MatVec(L.v, h, v);
        Rope(q, hd, pos, c.rope_theta);
        Rope(k, hd, pos, c.rope_theta);
        keys[l].push_back(k);
        values[l].push_back(v);
        attn.assign(q.size(), 0.0f);
        for (int64_t head = 0; head < c.n_heads; ++head) {
          const int64_t kv_head = head / group;
          std::vector<double> score(static_cast<size_t>(pos + 1));
          double top = -INFINITY;
          for (int t = 0; t <= pos; ++t) {
            double dot = 0;
            for (int64_t i = 0; i < hd; ++i) {
              dot += static_cast<double>(q[static_cast<size_t>(head * hd + i)]) *
                     keys[l][static_cast<size_t>(t)][static_cast<size_t>(kv_head * hd + i)];
            }
            score[static_cast<size_t>(t)] = dot / std::sqrt(static_cast<double>(hd));
            top = std::max(top, score[static_cast<size_t>(t)]);
          }
          double total = 0;
          for (double& e : score) total += (e = std::exp(e - top));
          for (int t = 0; t <= pos; ++t) {
            const double weight = score[static_cast<size_t>(t)] / total;
            for (int64_t i = 0; i < hd; ++i) {
              attn[static_cast<size_t>(head * hd + i)] += static_cast<float>(
                  weight *
                  values[l][static_cast<size_t>(t)][static_cast<size_t>(kv_head * hd + i)]);
            }
          }
        }
        MatVec(L.o, attn, y);
        for (int64_t i = 0; i < d; ++i) x[static_cast<size_t>(i)] += y[static_cast<size_t>(i)];

        double content = 0;
        for (int64_t i = bias_dims; i < d; ++i)
          content += static_cast<double>(x[static_cast<size_t>(i)]) * x[static_cast<size_t>(i)];
        m.content_energy[l] += content / static_cast<double>(d - bias_dims);
        h = RmsNorm(x, L.ffn_norm, c.rms_eps);
        MatVec(L.gate, h, g);
        MatVec(L.up, h, u);
        for (int64_t i = 0; i < c.n_ff; ++i) {
          const float gi = g[static_cast<size_t>(i)];
          if (!(gi > threshold)) continue;
          ++m.fired[l][static_cast<size_t>(i)];
          active[l].push_back(static_cast<int32_t>(i));
          const float a = gi * u[static_cast<size_t>(i)];
          observe(a);
          const float* down = L.down_t.row(i);
          for (int64_t j = 0; j < d; ++j) x[static_cast<size_t>(j)] += a * down[j];
        }
        for (float value : x) observe(value);
      }
      std::vector<float> h = RmsNorm(x, *output_norm, c.rms_eps);
      MatVec(*output, h, logits);
      for (float value : logits) observe(value);
      ++m.tokens;
    }
  }
  for (double& e : m.content_energy) e /= static_cast<double>(m.tokens);
  return m;
}

}  // namespace pinfer::synth::testing
