// What the OPT and Falcon fixtures share: their random weights, written as one safetensors file,
// and the f64 pieces of their independent reference forward passes (a linear layer, torch's
// LayerNorm, causal softmax attention with grouped KV heads, greedy decoding). Written from the
// published architectures, without any pinfer code, so that the runtime is compared against
// something it does not share.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "tests/convert/hf_fixture.h"

namespace pinfer::testing::fixture {

// Normal random tensors, drawn in the order they are added (so a fixture's values depend only on
// its seed and the order of its Add calls), kept by name for the reference.
class RandomTensors {
 public:
  explicit RandomTensors(uint32_t seed) : rng_(seed) {}

  void Add(const std::string& name, std::vector<uint64_t> shape, float mean, float stddev) {
    uint64_t count = 1;
    for (uint64_t s : shape) count *= s;
    std::normal_distribution<float> normal(mean, stddev);
    std::vector<float> values(count);
    for (float& v : values) v = normal(rng_);
    weights_[name] = std::move(values);
    order_.emplace_back(name, std::move(shape));
  }

  // Writes every tensor as `dtype`, in the order added, under the name `file_name(name)`.
  void Write(const std::string& path, const std::string& dtype,
             const std::function<std::string(const std::string&)>& file_name) const {
    std::vector<RawTensor> raw;
    for (const auto& [name, shape] : order_) {
      raw.push_back({file_name(name), dtype, shape, EncodeAs(dtype, weights_.at(name))});
    }
    WriteSafetensors(path, raw);
  }

  std::map<std::string, std::vector<float>> TakeWeights() { return std::move(weights_); }

 private:
  std::mt19937 rng_;
  std::map<std::string, std::vector<float>> weights_;
  std::vector<std::pair<std::string, std::vector<uint64_t>>> order_;
};

// y[r] = W[first_row + r, :] · x + b[r] for r < rows, W row-major with x.size() columns (b may be
// null).
inline std::vector<double> Linear(const std::vector<float>& w, const std::vector<float>* b,
                                  const std::vector<double>& x, int64_t rows,
                                  int64_t first_row = 0) {
  const int64_t cols = static_cast<int64_t>(x.size());
  std::vector<double> y(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    double s = b != nullptr ? (*b)[r] : 0.0;
    for (int64_t c = 0; c < cols; ++c) {
      s += static_cast<double>(w[(first_row + r) * cols + c]) * x[c];
    }
    y[r] = s;
  }
  return y;
}

// torch.nn.LayerNorm(eps = 1e-5): biased variance.
inline std::vector<double> LayerNorm(const std::vector<double>& x, const std::vector<float>& w,
                                     const std::vector<float>& b) {
  double mean = 0, var = 0;
  for (double v : x) mean += v;
  mean /= static_cast<double>(x.size());
  for (double v : x) var += (v - mean) * (v - mean);
  var /= static_cast<double>(x.size());
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = (x[i] - mean) / std::sqrt(var + 1e-5) * w[i] + b[i];
  return y;
}

// Causal softmax attention of position t: q[t] ([n_heads · hd]) against k[p], v[p]
// ([n_kv_heads · hd]) for p <= t, scores scaled by `scale`; query head h reads KV head
// h / (n_heads / n_kv_heads). Returns [n_heads · hd].
inline std::vector<double> CausalAttention(const std::vector<std::vector<double>>& q,
                                           const std::vector<std::vector<double>>& k,
                                           const std::vector<std::vector<double>>& v, int64_t t,
                                           int64_t n_heads, int64_t n_kv_heads, int64_t hd,
                                           double scale) {
  const int64_t group = n_heads / n_kv_heads;
  std::vector<double> attended(static_cast<size_t>(n_heads * hd), 0.0);
  for (int64_t head = 0; head < n_heads; ++head) {
    const int64_t kh = head / group;
    std::vector<double> scores(static_cast<size_t>(t + 1));
    double top = -1e300;
    for (int64_t p = 0; p <= t; ++p) {
      double dot = 0;
      for (int64_t i = 0; i < hd; ++i) dot += q[t][head * hd + i] * k[p][kh * hd + i];
      scores[p] = dot * scale;
      top = std::max(top, scores[p]);
    }
    double sum = 0;
    for (double& e : scores) sum += (e = std::exp(e - top));
    for (int64_t p = 0; p <= t; ++p) {
      for (int64_t i = 0; i < hd; ++i) {
        attended[head * hd + i] += scores[p] / sum * v[p][kh * hd + i];
      }
    }
  }
  return attended;
}

// `steps` argmax tokens after `prompt`, re-running `logits` ([tokens, vocab]) on the whole
// sequence each step.
inline std::vector<int32_t> ReferenceGreedy(
    const std::function<std::vector<double>(const std::vector<int32_t>&)>& logits, int64_t vocab,
    std::vector<int32_t> prompt, int steps) {
  std::vector<int32_t> out;
  for (int i = 0; i < steps; ++i) {
    const std::vector<double> all = logits(prompt);
    const auto last = all.end() - vocab;
    const int32_t token = static_cast<int32_t>(std::max_element(last, all.end()) - last);
    out.push_back(token);
    prompt.push_back(token);
  }
  return out;
}

}  // namespace pinfer::testing::fixture
