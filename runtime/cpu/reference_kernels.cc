#include "runtime/cpu/reference_kernels.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "format/quant.h"

namespace pinfer::cpu::reference {
namespace {

std::vector<float> DecodeRow(const MatrixView& w, int64_t r) {
  std::vector<float> row(static_cast<size_t>(w.cols));
  (void)pinfer::DecodeRow(w.Row(r), static_cast<size_t>(w.cols), w.dtype, row.data());
  return row;
}

}  // namespace

void MatVec(const MatrixView& w, const float* x, float* y) { reference::MatMul(w, x, 1, y); }

void MatMul(const MatrixView& w, const float* x, int64_t n, float* y) {
  for (int64_t r = 0; r < w.rows; ++r) {
    const std::vector<float> row = DecodeRow(w, r);
    for (int64_t t = 0; t < n; ++t) {
      double sum = 0.0;
      for (int64_t c = 0; c < w.cols; ++c) sum += static_cast<double>(row[c]) * x[t * w.cols + c];
      y[t * w.rows + r] = static_cast<float>(sum);
    }
  }
}

void MatVecTransposedAccumulate(const MatrixView& w, const float* a, float* y) {
  reference::MatMulTransposedAccumulate(w, a, 1, y);
}

void MatMulTransposedAccumulate(const MatrixView& w, const float* a, int64_t n, float* y) {
  std::vector<double> sums(static_cast<size_t>(n * w.cols), 0.0);
  for (int64_t r = 0; r < w.rows; ++r) {
    const std::vector<float> row = DecodeRow(w, r);
    for (int64_t t = 0; t < n; ++t) {
      const double scale = a[t * w.rows + r];
      if (scale == 0.0) continue;
      for (int64_t c = 0; c < w.cols; ++c) sums[t * w.cols + c] += scale * row[c];
    }
  }
  for (int64_t i = 0; i < n * w.cols; ++i) y[i] += static_cast<float>(sums[i]);
}

void GatherMatMul(const MatrixView& w, const int32_t* rows, int64_t count, const float* x,
                  int64_t n, float* y) {
  for (int64_t j = 0; j < count; ++j) {
    const std::vector<float> row = DecodeRow(w, rows[j]);
    for (int64_t t = 0; t < n; ++t) {
      double sum = 0.0;
      for (int64_t c = 0; c < w.cols; ++c) sum += static_cast<double>(row[c]) * x[t * w.cols + c];
      y[t * count + j] = static_cast<float>(sum);
    }
  }
}

void GatherMatMulTransposedAccumulate(const MatrixView& w, const int32_t* rows, int64_t count,
                                      const float* a, int64_t n, float* y) {
  std::vector<double> sums(static_cast<size_t>(n * w.cols), 0.0);
  for (int64_t j = 0; j < count; ++j) {
    const std::vector<float> row = DecodeRow(w, rows[j]);
    for (int64_t t = 0; t < n; ++t) {
      const double scale = a[t * count + j];
      if (scale == 0.0) continue;
      for (int64_t c = 0; c < w.cols; ++c) sums[t * w.cols + c] += scale * row[c];
    }
  }
  for (int64_t i = 0; i < n * w.cols; ++i) y[i] += static_cast<float>(sums[i]);
}

void DecodeRows(const MatrixView& w, int64_t row, int64_t count, float* out) {
  for (int64_t r = 0; r < count; ++r) {
    (void)pinfer::DecodeRow(w.Row(row + r), static_cast<size_t>(w.cols), w.dtype, out + r * w.cols);
  }
}

void RmsNorm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  double sum_sq = 0.0;
  for (int64_t i = 0; i < n; ++i) sum_sq += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(sum_sq / n + eps));
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

void RopeInterleaved(float* v, int64_t n_heads, int64_t head_dim, int64_t pos,
                     const RopeFrequencies& rope) {
  for (int64_t h = 0; h < n_heads; ++h) {
    float* head = v + h * head_dim;
    for (int64_t i = 0; i < head_dim; i += 2) {
      const double angle = static_cast<double>(pos) * rope.Frequency(i / 2, head_dim);
      const double c = std::cos(angle), s = std::sin(angle);
      const double x0 = head[i], x1 = head[i + 1];
      head[i] = static_cast<float>(x0 * c - x1 * s);
      head[i + 1] = static_cast<float>(x0 * s + x1 * c);
    }
  }
}

// A rotation by `delta` positions is RoPE at position `delta`.
void RopeShift(float* rows, int64_t n_rows, int64_t row_stride, int64_t n_heads, int64_t head_dim,
               int64_t delta, const RopeFrequencies& rope) {
  for (int64_t r = 0; r < n_rows; ++r) {
    reference::RopeInterleaved(rows + r * row_stride, n_heads, head_dim, delta, rope);
  }
}

void Softmax(float* x, int64_t n) {
  float max = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) max = std::max(max, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(x[i] / sum);
}

void FfnCombine(ActivationKind act, float param, const float* gate, const float* up, int64_t n,
                float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = ActivationCombine(act, param, gate[i], up[i]);
}

void ShiftedRelu(float* x, int64_t n, float shift) {
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] > shift ? x[i] - shift : 0.0f;
}

void Add(const float* x, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void Attention(const AttentionShape& s, DType kv_type, const float* q, const void* k, const void* v,
               int64_t pos0, int64_t n, float* out) {
  const int64_t group = s.n_heads / s.n_kv_heads;
  const double scale = 1.0 / std::sqrt(static_cast<double>(s.head_dim));
  // The cache rows decoded to f32 (pinfer::DecodeRow: the format's own decoding).
  const int64_t positions = pos0 + n;
  const MatrixView k_rows = MakeMatrixView(kv_type, positions, s.kv_stride, k);
  const MatrixView v_rows = MakeMatrixView(kv_type, positions, s.kv_stride, v);
  std::vector<float> keys(static_cast<size_t>(positions * s.kv_stride));
  std::vector<float> values(keys.size());
  reference::DecodeRows(k_rows, 0, positions, keys.data());
  reference::DecodeRows(v_rows, 0, positions, values.data());
  std::vector<float> scores;
  for (int64_t t = 0; t < n; ++t) {
    const int64_t n_keys = pos0 + t + 1;  // causal: up to and including this position
    scores.resize(static_cast<size_t>(n_keys));
    for (int64_t h = 0; h < s.n_heads; ++h) {
      const float* qh = q + (t * s.n_heads + h) * s.head_dim;
      const int64_t kv_head = h / group;
      for (int64_t p = 0; p < n_keys; ++p) {
        const float* kp = keys.data() + p * s.kv_stride + kv_head * s.head_dim;
        double dot = 0.0;
        for (int64_t d = 0; d < s.head_dim; ++d) dot += static_cast<double>(qh[d]) * kp[d];
        scores[p] = static_cast<float>(dot * scale);
      }
      reference::Softmax(scores.data(), n_keys);
      float* oh = out + (t * s.n_heads + h) * s.head_dim;
      for (int64_t d = 0; d < s.head_dim; ++d) {
        double acc = 0.0;
        for (int64_t p = 0; p < n_keys; ++p) {
          acc +=
              static_cast<double>(scores[p]) * values[p * s.kv_stride + kv_head * s.head_dim + d];
        }
        oh[d] = static_cast<float>(acc);
      }
    }
  }
}

void EncodeRows(DType dtype, const float* x, int64_t rows, int64_t cols, void* out) {
  const size_t row_bytes = *RowBytes(dtype, static_cast<uint64_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    (void)pinfer::EncodeRow(x + r * cols, static_cast<size_t>(cols), dtype,
                            static_cast<uint8_t*>(out) + r * row_bytes);
  }
}

}  // namespace pinfer::cpu::reference
