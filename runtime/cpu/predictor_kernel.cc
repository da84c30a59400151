#include "runtime/cpu/predictor_kernel.h"

#include <algorithm>
#include <cstring>

#include "runtime/cpu/reference_kernels.h"

namespace pinfer::cpu {
namespace {

void AddBias(const float* bias, int64_t cols, int64_t n, float* y, bool relu) {
  for (int64_t t = 0; t < n; ++t) {
    float* row = y + t * cols;
    for (int64_t c = 0; c < cols; ++c) {
      const float v = row[c] + bias[c];
      row[c] = relu ? std::max(v, 0.0f) : v;
    }
  }
}

void Grow(std::vector<float>& buffer, int64_t size) {
  if (buffer.size() < static_cast<size_t>(size)) buffer.resize(static_cast<size_t>(size));
}

}  // namespace

std::span<const float> PredictorLogits(const PredictorView& p, const float* x, int64_t n,
                                       PredictorScratch& scratch) {
  Grow(scratch.hidden, n * p.rank());
  Grow(scratch.logits, n * p.n_ff());
  float* hidden = scratch.hidden.data();
  float* logits = scratch.logits.data();
  if (n == 1) {
    MatVec(p.w1, x, hidden);
  } else {
    MatMul(p.w1, x, n, hidden);
  }
  AddBias(p.b1, p.rank(), n, hidden, /*relu=*/true);
  if (n == 1) {
    MatVec(p.w2, hidden, logits);
  } else {
    MatMul(p.w2, hidden, n, logits);
  }
  AddBias(p.b2, p.n_ff(), n, logits, /*relu=*/false);
  return {logits, static_cast<size_t>(n * p.n_ff())};
}

int64_t SelectActive(const float* logits, int64_t n_ff, float logit_threshold,
                     std::vector<int32_t>& ids) {
  const size_t before = ids.size();
  for (int64_t i = 0; i < n_ff; ++i) {
    if (logits[i] >= logit_threshold) ids.push_back(static_cast<int32_t>(i));
  }
  return static_cast<int64_t>(ids.size() - before);
}

void SelectActiveMask(const float* logits, int64_t n_ff, float logit_threshold, uint8_t* mask) {
  std::memset(mask, 0, static_cast<size_t>(PredictorMaskBytes(n_ff)));
  for (int64_t i = 0; i < n_ff; ++i) {
    if (logits[i] >= logit_threshold) mask[i >> 3] |= static_cast<uint8_t>(1u << (i & 7));
  }
}

void PredictActive(const PredictorView& p, const float* x, int64_t n, PredictorScratch& scratch,
                   PredictedActive& active, uint8_t* masks) {
  const float* logits = PredictorLogits(p, x, n, scratch).data();
  const int64_t n_ff = p.n_ff();
  active.ids.clear();
  active.offsets.assign(1, 0);
  for (int64_t t = 0; t < n; ++t) {
    SelectActive(logits + t * n_ff, n_ff, p.logit_threshold, active.ids);
    active.offsets.push_back(static_cast<int64_t>(active.ids.size()));
    if (masks != nullptr) {
      SelectActiveMask(logits + t * n_ff, n_ff, p.logit_threshold,
                       masks + t * PredictorMaskBytes(n_ff));
    }
  }
}

namespace reference {

std::span<const float> PredictorLogits(const PredictorView& p, const float* x, int64_t n,
                                       PredictorScratch& scratch) {
  Grow(scratch.hidden, n * p.rank());
  Grow(scratch.logits, n * p.n_ff());
  for (int64_t t = 0; t < n; ++t) {
    float* hidden = scratch.hidden.data() + t * p.rank();
    float* logits = scratch.logits.data() + t * p.n_ff();
    cpu::reference::MatVec(p.w1, x + t * p.dim(), hidden);
    AddBias(p.b1, p.rank(), 1, hidden, /*relu=*/true);
    cpu::reference::MatVec(p.w2, hidden, logits);
    AddBias(p.b2, p.n_ff(), 1, logits, /*relu=*/false);
  }
  return {scratch.logits.data(), static_cast<size_t>(n * p.n_ff())};
}

}  // namespace reference
}  // namespace pinfer::cpu
