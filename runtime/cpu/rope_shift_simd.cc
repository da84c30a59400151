// RoPE re-rotation of stored keys (the context shift of a KV cache): every interleaved pair of
// every head of a run of cache rows is rotated by one fixed angle per pair, so kernels.cc computes
// the cosines and sines once (in f64, as RopeInterleaved does) and this body applies them to all
// the rows. Compiled once per Highway target and dispatched at run time.
//
// With the tables laid out per element, cos = (c0, c0, c1, c1, ...) and sin = (-s0, s0, -s1, s1,
// ...), a pair rotation is one vector formula: out = v · cos + swap_pairs(v) · sin, where
// swap_pairs (Reverse2) turns (x0, x1) into (x1, x0): out0 = x0·c - x1·s, out1 = x1·c + x0·s.
#include <cstdint>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "runtime/cpu/rope_shift_simd.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "runtime/cpu/simd_common-inl.h"
#include "runtime/cpu/simd_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace pinfer::cpu::simd {
namespace HWY_NAMESPACE {

template <class D>
HWY_INLINE void RopeShiftRowsD(D d, float* rows, int64_t n_rows, int64_t row_stride,
                               int64_t n_heads, int64_t head_dim, const float* cosines,
                               const float* sines) {
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  for (int64_t r = 0; r < n_rows; ++r) {
    for (int64_t h = 0; h < n_heads; ++h) {
      float* head = rows + r * row_stride + h * head_dim;
      for (int64_t e = 0; e < head_dim; e += lanes) {
        const auto v = hn::LoadU(d, head + e);
        const auto rotated = hn::MulAdd(v, hn::LoadU(d, cosines + e),
                                        hn::Mul(hn::Reverse2(d, v), hn::LoadU(d, sines + e)));
        hn::StoreU(rotated, d, head + e);
      }
    }
  }
}

void RopeShiftRows(float* rows, int64_t n_rows, int64_t row_stride, int64_t n_heads,
                   int64_t head_dim, const float* cosines, const float* sines) {
#if HWY_TARGET == HWY_SCALAR
  // One lane: no pairs within a vector.
  for (int64_t r = 0; r < n_rows; ++r) {
    for (int64_t h = 0; h < n_heads; ++h) {
      float* head = rows + r * row_stride + h * head_dim;
      for (int64_t e = 0; e < head_dim; e += 2) {
        const float x0 = head[e], x1 = head[e + 1];
        head[e] = x0 * cosines[e] + x1 * sines[e];
        head[e + 1] = x1 * cosines[e + 1] + x0 * sines[e + 1];
      }
    }
  }
#else
  // The widest vector that divides head_dim (tiny models have head_dim 8); head_dim is even, and
  // every vector holds whole pairs.
  const DF df;
  if (head_dim % static_cast<int64_t>(hn::Lanes(df)) == 0) {
    return RopeShiftRowsD(df, rows, n_rows, row_stride, n_heads, head_dim, cosines, sines);
  }
  if (head_dim % 8 == 0) {
    return RopeShiftRowsD(hn::CappedTag<float, 8>(), rows, n_rows, row_stride, n_heads, head_dim,
                          cosines, sines);
  }
  if (head_dim % 4 == 0) {
    return RopeShiftRowsD(hn::CappedTag<float, 4>(), rows, n_rows, row_stride, n_heads, head_dim,
                          cosines, sines);
  }
  RopeShiftRowsD(hn::CappedTag<float, 2>(), rows, n_rows, row_stride, n_heads, head_dim, cosines,
                 sines);
#endif
}

}  // namespace HWY_NAMESPACE
}  // namespace pinfer::cpu::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pinfer::cpu::simd {

HWY_EXPORT(RopeShiftRows);

void RopeShiftRows(float* rows, int64_t n_rows, int64_t row_stride, int64_t n_heads,
                   int64_t head_dim, const float* cosines, const float* sines) {
  HWY_DYNAMIC_DISPATCH(RopeShiftRows)(rows, n_rows, row_stride, n_heads, head_dim, cosines, sines);
}

}  // namespace pinfer::cpu::simd
#endif  // HWY_ONCE
