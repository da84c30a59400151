// Vector kernels of the forward pass that touch each element a few times: RMSNorm, RoPE, softmax,
// the FFN activation combine, shifted ReLU and residual add. Compiled once per Highway target and
// dispatched at run time. They are cheap next to the matrix products; the point is to not be slow
// (no libm call per element), and to match the scalar references closely.
#include <algorithm>
#include <cmath>
#include <limits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "runtime/cpu/elementwise_simd.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "runtime/cpu/simd_common-inl.h"
#include "runtime/cpu/simd_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace pinfer::cpu::simd {
namespace HWY_NAMESPACE {

// Applies `op` (vector, vector -> vector) to whole vectors, then to the tail with a partial load
// (zero-padded copies), so the callers need no scalar duplicate of their formula.
template <class Op>
HWY_INLINE void Transform2(const float* a, const float* b, int64_t n, float* out, const Op& op) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    hn::StoreU(op(df, hn::LoadU(df, a + i), hn::LoadU(df, b + i)), df, out + i);
  }
  if (i < n) {
    HWY_ALIGN float ta[hn::MaxLanes(DF())] = {};
    HWY_ALIGN float tb[hn::MaxLanes(DF())] = {};
    HWY_ALIGN float to[hn::MaxLanes(DF())];
    for (int64_t j = i; j < n; ++j) {
      ta[j - i] = a[j];
      tb[j - i] = b[j];
    }
    hn::Store(op(df, hn::Load(df, ta), hn::Load(df, tb)), df, to);
    for (int64_t j = i; j < n; ++j) out[j] = to[j - i];
  }
}

void RmsNorm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  // f32 vector sums of squares over chunks of 16 vectors (two accumulators: half the dependency
  // chain), chunk totals in f64 (the reference sums in f64).
  constexpr int64_t kChunkVectors = 16;
  double chunks = 0.0;
  int64_t i = 0;
  while (i + lanes <= n) {
    VF sum0 = hn::Zero(df), sum1 = hn::Zero(df);
    const int64_t chunk_end = std::min(n, i + kChunkVectors * lanes);
    for (; i + 2 * lanes <= chunk_end; i += 2 * lanes) {
      const VF a = hn::LoadU(df, x + i), b = hn::LoadU(df, x + i + lanes);
      sum0 = hn::MulAdd(a, a, sum0);
      sum1 = hn::MulAdd(b, b, sum1);
    }
    for (; i + lanes <= chunk_end; i += lanes) {
      const VF a = hn::LoadU(df, x + i);
      sum0 = hn::MulAdd(a, a, sum0);
    }
    chunks += SumLanes(df, hn::Add(sum0, sum1));
  }
  double sum_sq = chunks;
  for (; i < n; ++i) sum_sq += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(sum_sq / static_cast<double>(n) + eps));
  const VF vscale = hn::Set(df, scale);
  Transform2(x, weight, n, out,
             [vscale](DF, VF v, VF w) HWY_ATTR { return hn::Mul(hn::Mul(v, vscale), w); });
}

void RopeInterleaved(float* v, int64_t n_heads, int64_t head_dim, int64_t pos,
                     const RopeFrequencies& rope) {
  // The angles are computed in double, as the reference does (pos · freq reaches thousands of
  // radians, beyond what f32 sin/cos arguments resolve), once per call and shared by the heads.
  constexpr int64_t kMaxPairs = 256;
  float cosines[kMaxPairs], sines[kMaxPairs];
  for (int64_t p0 = 0; p0 < head_dim / 2; p0 += kMaxPairs) {
    const int64_t pairs = std::min(head_dim / 2 - p0, kMaxPairs);
    for (int64_t i = 0; i < pairs; ++i) {
      const double angle = static_cast<double>(pos) * rope.Frequency(p0 + i, head_dim);
      cosines[i] = static_cast<float>(std::cos(angle));
      sines[i] = static_cast<float>(std::sin(angle));
    }
    for (int64_t h = 0; h < n_heads; ++h) {
      float* pair = v + h * head_dim + 2 * p0;
      for (int64_t i = 0; i < pairs; ++i) {
        const float x0 = pair[2 * i], x1 = pair[2 * i + 1];
        pair[2 * i] = x0 * cosines[i] - x1 * sines[i];
        pair[2 * i + 1] = x0 * sines[i] + x1 * cosines[i];
      }
    }
  }
}

void Softmax(float* x, int64_t n) { SoftmaxInPlace(x, n); }

void FfnCombine(ActivationKind act, float param, const float* gate, const float* up, int64_t n,
                float* out) {
  const VF vparam = hn::Set(DF(), param);
  switch (act) {
    case ActivationKind::kSilu:
      // g / (1 + e^-g); the exponent is clamped below Exp's overflow (the quotient is ~0 there).
      return Transform2(gate, up, n, out, [](DF df, VF g, VF u) HWY_ATTR {
        const VF e = hn::Exp(df, hn::Min(hn::Neg(g), hn::Set(df, 88.0f)));
        return hn::Mul(hn::Div(g, hn::Add(hn::Set(df, 1.0f), e)), u);
      });
    case ActivationKind::kGelu:
      return Transform2(gate, up, n, out, [](DF df, VF g, VF u) HWY_ATTR {
        const VF inner =
            hn::Mul(hn::Mul(hn::Set(df, 0.7978845608028654f), g),
                    hn::MulAdd(hn::Mul(hn::Set(df, 0.044715f), g), g, hn::Set(df, 1.0f)));
        const VF half_g = hn::Mul(hn::Set(df, 0.5f), g);
        return hn::Mul(hn::MulAdd(half_g, hn::Tanh(df, inner), half_g), u);
      });
    case ActivationKind::kRelu:
      return Transform2(gate, up, n, out, [](DF df, VF g, VF u) HWY_ATTR {
        return hn::Mul(hn::Max(g, hn::Zero(df)), u);
      });
    case ActivationKind::kRelu2:
      return Transform2(gate, up, n, out, [](DF df, VF g, VF u) HWY_ATTR {
        const VF r = hn::Max(g, hn::Zero(df));
        return hn::Mul(hn::Mul(r, r), u);
      });
    case ActivationKind::kDRelu:
      return Transform2(gate, up, n, out, [](DF df, VF g, VF u) HWY_ATTR {
        return hn::Mul(hn::Max(g, hn::Zero(df)), hn::Max(u, hn::Zero(df)));
      });
    case ActivationKind::kFatRelu:
      return Transform2(gate, up, n, out, [vparam](DF, VF g, VF u) HWY_ATTR {
        return hn::IfThenElseZero(hn::Gt(g, vparam), hn::Mul(g, u));
      });
    case ActivationKind::kShiftedRelu:
      return Transform2(gate, up, n, out, [vparam](DF, VF g, VF u) HWY_ATTR {
        return hn::IfThenElseZero(hn::Gt(g, vparam), hn::Mul(hn::Sub(g, vparam), u));
      });
    case ActivationKind::kGeluErf:  // (gate-less FFNs only: no SIMD form, the scalar definition)
      for (int64_t i = 0; i < n; ++i) out[i] = ActivationCombine(act, param, gate[i], up[i]);
      return;
    case ActivationKind::kNone:  // the identity, as the reference
      return Transform2(gate, up, n, out, [](DF, VF g, VF u) HWY_ATTR { return hn::Mul(g, u); });
  }
  for (int64_t i = 0; i < n; ++i) out[i] = 0.0f;  // not a kind
}

void ShiftedRelu(float* x, int64_t n, float shift) {
  const VF vshift = hn::Set(DF(), shift);
  Transform2(x, x, n, x, [vshift](DF, VF v, VF) HWY_ATTR {
    return hn::IfThenElseZero(hn::Gt(v, vshift), hn::Sub(v, vshift));
  });
}

void Add(const float* x, int64_t n, float* y) {
  Transform2(x, y, n, y, [](DF, VF a, VF b) HWY_ATTR { return hn::Add(a, b); });
}

}  // namespace HWY_NAMESPACE
}  // namespace pinfer::cpu::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pinfer::cpu::simd {

HWY_EXPORT(RmsNorm);
HWY_EXPORT(RopeInterleaved);
HWY_EXPORT(Softmax);
HWY_EXPORT(FfnCombine);
HWY_EXPORT(ShiftedRelu);
HWY_EXPORT(Add);

void RmsNorm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  HWY_DYNAMIC_DISPATCH(RmsNorm)(x, weight, n, eps, out);
}
void RopeInterleaved(float* v, int64_t n_heads, int64_t head_dim, int64_t pos,
                     const RopeFrequencies& rope) {
  HWY_DYNAMIC_DISPATCH(RopeInterleaved)(v, n_heads, head_dim, pos, rope);
}
void Softmax(float* x, int64_t n) { HWY_DYNAMIC_DISPATCH(Softmax)(x, n); }
void FfnCombine(ActivationKind act, float param, const float* gate, const float* up, int64_t n,
                float* out) {
  HWY_DYNAMIC_DISPATCH(FfnCombine)(act, param, gate, up, n, out);
}
void ShiftedRelu(float* x, int64_t n, float shift) {
  HWY_DYNAMIC_DISPATCH(ShiftedRelu)(x, n, shift);
}
void Add(const float* x, int64_t n, float* y) { HWY_DYNAMIC_DISPATCH(Add)(x, n, y); }

}  // namespace pinfer::cpu::simd
#endif  // HWY_ONCE
