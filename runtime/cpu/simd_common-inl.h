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

constexpr bool IsQuantized(DType dtype) { return dtype == DType::kQ8_0 || dtype == DType::kQ4_0; }

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
