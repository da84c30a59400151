// Helpers shared by the *_simd.cc translation units; included once per Highway target, inside
// HWY_BEFORE_NAMESPACE / namespace pinfer::cpu::simd::HWY_NAMESPACE (hence no include guard of
// the usual kind: the per-target toggle below is Highway's idiom for -inl.h files).
#if defined(PINFER_CPU_SIMD_COMMON_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef PINFER_CPU_SIMD_COMMON_INL_H_
#undef PINFER_CPU_SIMD_COMMON_INL_H_
#else
#define PINFER_CPU_SIMD_COMMON_INL_H_
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "format/dtype.h"
#include "format/half.h"
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace pinfer::cpu::simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

constexpr bool IsQuantized(DType dtype) {
  return dtype == DType::kQ8_0 || dtype == DType::kQ4_0 || dtype == DType::kQ4_0x16;
}

// Loads/decodes the weight element types of float matrices, a vector or one element at a time.
template <typename T>
struct FloatElement;

template <>
struct FloatElement<float> {
  template <class D>
  static HWY_INLINE hn::Vec<D> Load(D d, const float* p) {
    return hn::LoadU(d, p);
  }
  static HWY_INLINE float Scalar(const float* p) { return *p; }
};

template <>
struct FloatElement<hwy::float16_t> {
  template <class D>
  static HWY_INLINE hn::Vec<D> Load(D d, const hwy::float16_t* p) {
    return hn::PromoteTo(d, hn::LoadU(hn::Rebind<hwy::float16_t, D>(), p));
  }
  static HWY_INLINE float Scalar(const hwy::float16_t* p) {
    uint16_t bits;
    std::memcpy(&bits, p, sizeof(bits));
    return F16ToF32(bits);
  }
};

template <>
struct FloatElement<hwy::bfloat16_t> {
  template <class D>
  static HWY_INLINE hn::Vec<D> Load(D d, const hwy::bfloat16_t* p) {
    return hn::PromoteTo(d, hn::LoadU(hn::Rebind<hwy::bfloat16_t, D>(), p));
  }
  static HWY_INLINE float Scalar(const hwy::bfloat16_t* p) {
    uint16_t bits;
    std::memcpy(&bits, p, sizeof(bits));
    return BF16ToF32(bits);
  }
};

HWY_INLINE float SumLanes(DF df, VF v) { return hn::GetLane(hn::SumOfLanes(df, v)); }

// The f16 scale of a q8_0/q4_0 block (its first two bytes), as f32.
// out[i] = Σ lanes of a_i, i < 4: the four horizontal sums at once (one transposing tree on
// AVX-512 instead of four separate reductions).
template <class D>
HWY_INLINE void SumOfLanes4(D d, hn::Vec<D> a0, hn::Vec<D> a1, hn::Vec<D> a2, hn::Vec<D> a3,
                            float* out) {
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  if constexpr (hn::MaxLanes(D()) == 16) {
    // Per 128-bit block: [a0 a1 a0 a1] and [a2 a3 a2 a3] partial sums, then [a0 a1 a2 a3].
    const __m512 t01 =
        _mm512_add_ps(_mm512_unpacklo_ps(a0.raw, a1.raw), _mm512_unpackhi_ps(a0.raw, a1.raw));
    const __m512 t23 =
        _mm512_add_ps(_mm512_unpacklo_ps(a2.raw, a3.raw), _mm512_unpackhi_ps(a2.raw, a3.raw));
    const __m512 blocks = _mm512_add_ps(_mm512_shuffle_ps(t01, t23, _MM_SHUFFLE(1, 0, 1, 0)),
                                        _mm512_shuffle_ps(t01, t23, _MM_SHUFFLE(3, 2, 3, 2)));
    const __m256 halves =
        _mm256_add_ps(_mm512_castps512_ps256(blocks), _mm512_extractf32x8_ps(blocks, 1));
    _mm_storeu_ps(out,
                  _mm_add_ps(_mm256_castps256_ps128(halves), _mm256_extractf128_ps(halves, 1)));
    return;
  }
#endif
  out[0] = hn::GetLane(hn::SumOfLanes(d, a0));
  out[1] = hn::GetLane(hn::SumOfLanes(d, a1));
  out[2] = hn::GetLane(hn::SumOfLanes(d, a2));
  out[3] = hn::GetLane(hn::SumOfLanes(d, a3));
}

// One-lane vector conversion: a single instruction where the target has F16C/NEON fp16.
HWY_INLINE float BlockScale(const uint8_t* block) {
  const hn::CappedTag<float, 1> d1;
  const hn::Rebind<hwy::float16_t, decltype(d1)> dh1;
  return hn::GetLane(
      hn::PromoteTo(d1, hn::LoadU(dh1, reinterpret_cast<const hwy::float16_t*>(block))));
}

// In place, max-subtracted, as the reference (which sums in f64).
HWY_INLINE void SoftmaxInPlace(float* x, int64_t n) {
  if (n <= 0) return;
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  VF vmax = hn::Set(df, -std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) vmax = hn::Max(vmax, hn::LoadU(df, x + i));
  float max = hn::GetLane(hn::MaxOfLanes(df, vmax));
  for (; i < n; ++i) max = std::max(max, x[i]);
  const VF vneg_max = hn::Set(df, -max);
  // f32 vector sums over chunks of kChunkVectors vectors, chunk totals in f64: a short f32 chain
  // even where vectors have one lane.
  constexpr int64_t kChunkVectors = 16;
  double sum = 0.0;
  for (i = 0; i + lanes <= n;) {
    VF vsum = hn::Zero(df);
    for (int64_t v = 0; v < kChunkVectors && i + lanes <= n; ++v, i += lanes) {
      const VF e = hn::Exp(df, hn::Add(hn::LoadU(df, x + i), vneg_max));
      hn::StoreU(e, df, x + i);
      vsum = hn::Add(vsum, e);
    }
    sum += SumLanes(df, vsum);
  }
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const VF vinv = hn::Set(df, static_cast<float>(1.0 / sum));
  for (i = 0; i + lanes <= n; i += lanes)
    hn::StoreU(hn::Mul(hn::LoadU(df, x + i), vinv), df, x + i);
  const float inv = static_cast<float>(1.0 / sum);
  for (; i < n; ++i) x[i] *= inv;
}

}  // namespace HWY_NAMESPACE
}  // namespace pinfer::cpu::simd
HWY_AFTER_NAMESPACE();

#endif  // PINFER_CPU_SIMD_COMMON_INL_H_
