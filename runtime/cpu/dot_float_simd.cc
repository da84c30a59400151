// Dot-product kernels for float weights (f32, f16, bf16) against f32 activations: the body of
// MatVec/MatMul. Compiled once per Highway target (foreach_target) and dispatched at run time.
//
// Register tile: kRows weight rows x kTokens tokens, one accumulator vector each, so every weight
// vector loaded (and converted to f32) serves kTokens FMAs and every activation vector kRows.
// For n > 1 the columns are cut into chunks and the rows into blocks so that a block of weight
// chunks stays in L2 while all token tiles pass over it (prompt processing is compute-bound;
// decode, n = 1, streams the weights once and is bound by memory bandwidth).
#include <algorithm>
#include <cstring>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "runtime/cpu/dot_float_simd.cc"
#include "hwy/cache_control.h"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "runtime/cpu/simd_common-inl.h"
#include "runtime/cpu/simd_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace pinfer::cpu::simd {
namespace HWY_NAMESPACE {

// Columns per chunk and rows per block of the cache blocking for n > 1 (see the file comment).
constexpr int64_t kColumnChunk = 1024;
constexpr int64_t kRowBlock = 64;
constexpr int64_t kPrefetchTiles = 2;  // n = 1: prefetch distance, in row tiles
constexpr int64_t kStreamTokens = 16;  // batches up to this size stream the rows (see below)
// Register tile: kRowTile x kTokenTile accumulators plus kRowTile weight vectors and one
// activation vector must fit the register file (32 vectors with AVX-512, 16 with AVX2/NEON/SSE).
constexpr int kRowTile = 4;
constexpr int kTokenTile = HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL ? 6 : 2;

// sums[r][t] = Σ_{c in [c0, c1)} w[r][c] · x[t][c]
// `ahead` (null or kRows rows): rows to prefetch at the same columns (see RunFloatTile).
template <typename T, int kRows, int kTokens>
HWY_INLINE void FloatTile(const T* const* w, const T* const* ahead, const float* const* x,
                          int64_t c0, int64_t c1, float (&sums)[kRows][kTokens]) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  VF acc[kRows][kTokens];
  for (int r = 0; r < kRows; ++r) {
    for (int t = 0; t < kTokens; ++t) acc[r][t] = hn::Zero(df);
  }
  int64_t c = c0;
  for (; c + lanes <= c1; c += lanes) {
    VF wv[kRows];
    for (int r = 0; r < kRows; ++r) {
      if (ahead != nullptr) hwy::Prefetch(ahead[r] + c);
      wv[r] = FloatElement<T>::Load(df, w[r] + c);
    }
    for (int t = 0; t < kTokens; ++t) {
      const VF xv = hn::LoadU(df, x[t] + c);
      for (int r = 0; r < kRows; ++r) acc[r][t] = hn::MulAdd(wv[r], xv, acc[r][t]);
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int t = 0; t < kTokens; ++t) sums[r][t] = SumLanes(df, acc[r][t]);
  }
  for (; c < c1; ++c) {
    for (int r = 0; r < kRows; ++r) {
      const float wc = FloatElement<T>::Scalar(w[r] + c);
      for (int t = 0; t < kTokens; ++t) sums[r][t] += wc * x[t][c];
    }
  }
}

// One tile: rows rows.Row(i0 .. i0 + kRows), tokens t0 .. t0 + kTokens, columns [c0, c1).
// The first column chunk stores, later ones add.
template <typename T, int kRows, int kTokens>
HWY_INLINE void RunFloatTile(const MatrixView& w, const RowSet& rows, int64_t i0, const float* x,
                             int64_t t0, int64_t c0, int64_t c1, float* y, int64_t y_stride,
                             bool prefetch) {
  const T* wr[kRows];
  int64_t slots[kRows];
  for (int r = 0; r < kRows; ++r) {
    slots[r] = rows.Slot(i0 + r);
    wr[r] = reinterpret_cast<const T*>(w.Row(rows.Row(i0 + r)));
  }
  const float* xt[kTokens];
  for (int t = 0; t < kTokens; ++t) xt[t] = x + (t0 + t) * w.cols;
  // Decode and small batches stream the weights from DRAM once: prefetch the rows kPrefetchTiles
  // tiles ahead (the hardware prefetcher alone keeps too little in flight while the core computes).
  const T* ahead_rows[kRows];
  const T* const* ahead = nullptr;
  if (prefetch && i0 + (kPrefetchTiles + 1) * kRows <= rows.size()) {
    for (int r = 0; r < kRows; ++r) {
      ahead_rows[r] = reinterpret_cast<const T*>(w.Row(rows.Row(i0 + kPrefetchTiles * kRows + r)));
    }
    ahead = ahead_rows;
  }
  float sums[kRows][kTokens];
  FloatTile<T, kRows, kTokens>(wr, ahead, xt, c0, c1, sums);
  for (int r = 0; r < kRows; ++r) {
    for (int t = 0; t < kTokens; ++t) {
      float& out = y[(t0 + t) * y_stride + slots[r]];
      out = c0 == 0 ? sums[r][t] : out + sums[r][t];
    }
  }
}

template <typename T, int kTokens>
HWY_INLINE void FloatRowsForTokens(const MatrixView& w, const RowSet& rows, int64_t i_begin,
                                   int64_t i_end, const float* x, int64_t t0, int64_t c0,
                                   int64_t c1, float* y, int64_t y_stride) {
  int64_t i = i_begin;
  for (; i + kRowTile <= i_end; i += kRowTile) {
    RunFloatTile<T, kRowTile, kTokens>(w, rows, i, x, t0, c0, c1, y, y_stride, kTokens == 1);
  }
  for (; i < i_end; ++i) {
    RunFloatTile<T, 1, kTokens>(w, rows, i, x, t0, c0, c1, y, y_stride, kTokens == 1);
  }
}

// Small batches (n <= kStreamTokens): each row tile is read from memory once, whole, and serves
// every token while it sits in L1/L2, as in decode (the first token tile prefetches ahead), so a
// step of a few tokens costs about one token's weight traffic.
template <typename T, int kTokens>
HWY_INLINE void FloatTileRemainder(const MatrixView& w, const RowSet& rows, int64_t i,
                                   int tile_rows, const float* x, int64_t n, int64_t t, float* y,
                                   int64_t y_stride) {
  if constexpr (kTokens > 0) {
    if (n - t != kTokens) {
      return FloatTileRemainder<T, kTokens - 1>(w, rows, i, tile_rows, x, n, t, y, y_stride);
    }
    if (tile_rows == kRowTile) {
      return RunFloatTile<T, kRowTile, kTokens>(w, rows, i, x, t, 0, w.cols, y, y_stride, t == 0);
    }
    for (int r = 0; r < tile_rows; ++r) {
      RunFloatTile<T, 1, kTokens>(w, rows, i + r, x, t, 0, w.cols, y, y_stride, false);
    }
  }
}

template <typename T>
HWY_INLINE void FloatRowsSmallBatch(const MatrixView& w, const RowSet& rows, const float* x,
                                    int64_t n, float* y, int64_t y_stride) {
  const int64_t count = rows.size();
  for (int64_t i = 0; i < count; i += kRowTile) {
    const int tile_rows = static_cast<int>(std::min<int64_t>(kRowTile, count - i));
    int64_t t = 0;
    for (; t + kTokenTile <= n; t += kTokenTile) {
      if (tile_rows == kRowTile) {
        RunFloatTile<T, kRowTile, kTokenTile>(w, rows, i, x, t, 0, w.cols, y, y_stride, t == 0);
      } else {
        for (int r = 0; r < tile_rows; ++r) {
          RunFloatTile<T, 1, kTokenTile>(w, rows, i + r, x, t, 0, w.cols, y, y_stride, false);
        }
      }
    }
    if (t < n) FloatTileRemainder<T, kTokenTile - 1>(w, rows, i, tile_rows, x, n, t, y, y_stride);
  }
}

template <typename T, int kTokens>
HWY_INLINE void FloatTokenRemainder(const MatrixView& w, const RowSet& rows, int64_t i0, int64_t i1,
                                    const float* x, int64_t n, int64_t t, int64_t c0, int64_t c1,
                                    float* y, int64_t y_stride) {
  if constexpr (kTokens > 0) {
    if (n - t == kTokens) {
      FloatRowsForTokens<T, kTokens>(w, rows, i0, i1, x, t, c0, c1, y, y_stride);
    } else {
      FloatTokenRemainder<T, kTokens - 1>(w, rows, i0, i1, x, n, t, c0, c1, y, y_stride);
    }
  }
}

template <typename T>
void DotRowsFloatT(const MatrixView& w, RowSet rows, const float* x, int64_t n, float* y,
                   int64_t y_stride) {
  const int64_t count = rows.size();
  if (n == 1) {  // decode: one pass over the weights, no blocking needed
    FloatRowsForTokens<T, 1>(w, rows, 0, count, x, 0, 0, w.cols, y, y_stride);
    return;
  }
  if (n <= kStreamTokens) return FloatRowsSmallBatch<T>(w, rows, x, n, y, y_stride);
  for (int64_t c0 = 0; c0 < w.cols; c0 += kColumnChunk) {
    const int64_t c1 = std::min(w.cols, c0 + kColumnChunk);
    for (int64_t i0 = 0; i0 < count; i0 += kRowBlock) {
      const int64_t i1 = std::min(count, i0 + kRowBlock);
      int64_t t = 0;
      for (; t + kTokenTile <= n; t += kTokenTile) {
        FloatRowsForTokens<T, kTokenTile>(w, rows, i0, i1, x, t, c0, c1, y, y_stride);
      }
      FloatTokenRemainder<T, kTokenTile - 1>(w, rows, i0, i1, x, n, t, c0, c1, y, y_stride);
    }
  }
}

void DotRowsFloat(const MatrixView& w, RowSet rows, const float* x, int64_t n, float* y,
                  int64_t y_stride) {
  switch (w.dtype) {
    case DType::kF32:
      return DotRowsFloatT<float>(w, rows, x, n, y, y_stride);
    case DType::kF16:
      return DotRowsFloatT<hwy::float16_t>(w, rows, x, n, y, y_stride);
    case DType::kBF16:
      return DotRowsFloatT<hwy::bfloat16_t>(w, rows, x, n, y, y_stride);
    default:
      return;  // kernels.cc routes only float dtypes here
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace pinfer::cpu::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pinfer::cpu::simd {

HWY_EXPORT(DotRowsFloat);

void DotRowsFloat(const MatrixView& w, RowSet rows, const float* x, int64_t n, float* y,
                  int64_t y_stride) {
  HWY_DYNAMIC_DISPATCH(DotRowsFloat)(w, rows, x, n, y, y_stride);
}

}  // namespace pinfer::cpu::simd
#endif  // HWY_ONCE
