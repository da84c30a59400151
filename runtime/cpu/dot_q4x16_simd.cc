// Dot products of q4_0x16 weights (format/quant.h) against activations quantized to q8_0 and laid
// out in the same order (simd::QuantizedActivations::x16). Compiled once per Highway target and
// dispatched at run time.
//
// Why the layout: with plain q4_0 a 512-bit VPDPBUSD covers two blocks (or four after a byte
// permute), so per 32 elements the kernel unpacks, shuffles and scales; it is compute-bound and a
// batch of a few tokens costs nearly a token each. In a q4_0x16 group, int32 lane j of each of the
// four 64-byte nibble vectors belongs to block j, and the activations were put in the matching
// order once per call. Per 512 elements, row and token: 8 VPDPBUSD (low and high nibbles of four
// vectors), seeded with corr = -8·Σx of each block (the q - 8 offset), one int -> float convert
// and one FMA by the 16 products of scales (one f16 -> f32 conversion of the row's 16 scales).
// The nibble unpacking is per row, shared by every token of a tile.
//   - AVX3_DL: VPDPBUSD. AVX3 (no VNNI): VPMADDUBSW + VPMADDWD, exact here (nibbles <= 15, so a
//     pair sum is at most 2·15·127).
//   - every other target: each block is gathered back into q4_0 order and dotted with portable
//     Highway code (simpler, and correct).
// A row's tail blocks (after its last full group) are plain q4_0; they are dotted with the
// portable block routine on every target (at most 15 blocks a row; real models have none).
#include <algorithm>
#include <cstring>

#include "format/quant.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "runtime/cpu/dot_q4x16_simd.cc"
#include "hwy/cache_control.h"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "runtime/cpu/simd_common-inl.h"
#include "runtime/cpu/simd_kernels.h"

HWY_BEFORE_NAMESPACE();
#if HWY_TARGET == HWY_AVX3_DL
// As in dot_quant_simd.cc: Highway 1.0.3's AVX3_DL attributes lack avx512vnni.
#pragma GCC target("avx512vnni")
#endif
namespace pinfer::cpu::simd {
namespace HWY_NAMESPACE {

constexpr int64_t kBlock = 32;
constexpr int64_t kGroupBlocks = static_cast<int64_t>(kQ4x16GroupBlocks);  // 16
constexpr int64_t kGroupBytes = static_cast<int64_t>(kQ4x16GroupBytes);    // 288
constexpr int64_t kGroupElements = kGroupBlocks * kBlock;                  // 512
constexpr int64_t kStreamTokens = 16;  // batches up to this size read each row once
constexpr int64_t kChunkGroups = 4;    // n > 16: groups per column chunk (cache blocking)
constexpr int64_t kRowBlock = 64;      // n > 16: rows per cache block

// ------------------------------------------------------------------------------------------------
// Activations in the q4_0x16 order (portable).

void InterleaveActivationsQ4x16(const int8_t* q, int64_t cols, int64_t t0, int64_t t1, int8_t* x16,
                                int32_t* corr) {
  const int64_t blocks = cols / kBlock;
  const int64_t full = blocks / kGroupBlocks * kGroupBlocks;
  for (int64_t t = t0; t < t1; ++t) {
    const int8_t* src = q + t * cols;
    int8_t* dst = x16 + t * cols;
    for (int64_t b = 0; b < blocks; ++b) {
      int32_t sum = 0;
      for (int64_t i = 0; i < kBlock; ++i) sum += src[b * kBlock + i];
      corr[t * blocks + b] = -8 * sum;
    }
    for (int64_t b = 0; b < full; ++b) {
      const int64_t group = b / kGroupBlocks, j = b % kGroupBlocks;
      int8_t* vectors = dst + group * kGroupElements;
      for (int64_t g = 0; g < 4; ++g) {
        std::memcpy(vectors + (2 * g) * 64 + 4 * j, src + b * kBlock + 4 * g, 4);
        std::memcpy(vectors + (2 * g + 1) * 64 + 4 * j, src + b * kBlock + 16 + 4 * g, 4);
      }
    }
    std::memcpy(dst + full * kBlock, src + full * kBlock,
                static_cast<size_t>((blocks - full) * kBlock));
  }
}

// ------------------------------------------------------------------------------------------------
// One q4_0 block against 32 activations, portable: Σ q·x over the unsigned nibbles (the -8 offset
// is the caller's corr). The nibbles are widened to int16 once per block and row (`Widened`) and
// reused for every token.

using D16 = hn::CappedTag<int16_t, 16>;
using D32 = hn::RepartitionToWide<D16>;
using V16 = hn::Vec<D16>;
constexpr int64_t kLanes16 = static_cast<int64_t>(hn::MaxLanes(D16()));
constexpr int64_t kVectors16 = kBlock / kLanes16;

struct Widened {
  V16 v[kVectors16];
};

HWY_INLINE Widened WidenBlock(const BlockQ4_0& block) {
  const D16 d16;
  const hn::Rebind<uint8_t, D16> du8;
  const hn::Rebind<uint16_t, D16> du16;
  const auto mask = hn::Set(du16, 0x0F);
  Widened w;
  for (int64_t i = 0; i < kVectors16 / 2; ++i) {
    const auto packed = hn::PromoteTo(du16, hn::LoadU(du8, block.qs + i * kLanes16));
    w.v[i] = hn::BitCast(d16, hn::And(packed, mask));
    w.v[kVectors16 / 2 + i] = hn::BitCast(d16, hn::ShiftRight<4>(packed));
  }
  return w;
}

HWY_INLINE int32_t DotWidened(const Widened& w, const int8_t* x) {
  const D16 d16;
  const D32 d32;
  const hn::Rebind<int8_t, D16> d8;
  auto sum0 = hn::Zero(d32);
  auto sum1 = hn::Zero(d32);
  for (int64_t i = 0; i < kVectors16; ++i) {
    sum0 = hn::ReorderWidenMulAccumulate(
        d32, w.v[i], hn::PromoteTo(d16, hn::LoadU(d8, x + i * kLanes16)), sum0, sum1);
  }
  return hn::GetLane(hn::SumOfLanes(d32, hn::Add(sum0, sum1)));
}

// sums[t * stride] += Σ over blocks [b0, b1) of the row (q4_0x16, `blocks` blocks) · token t,
// for the n tokens starting at t0, with the portable block routine.
HWY_INLINE void PortableRowBlocks(const uint8_t* row, int64_t blocks, int64_t b0, int64_t b1,
                                  const QuantizedActivations& x, int64_t t0, int64_t n, float* sums,
                                  int64_t stride) {
  for (int64_t b = b0; b < b1; ++b) {
    const BlockQ4_0 block = Q4_0x16Block(row, static_cast<size_t>(b), static_cast<size_t>(blocks));
    const float d = F16ToF32(block.d);
    const Widened w = WidenBlock(block);
    for (int64_t t = t0; t < t0 + n; ++t) {
      const int32_t dot = DotWidened(w, x.q + t * x.cols + b * kBlock) + x.corr[t * blocks + b];
      sums[(t - t0) * stride] += static_cast<float>(dot) * (d * x.d[t * blocks + b]);
    }
  }
}

#if HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX3

// ------------------------------------------------------------------------------------------------
// AVX-512: a tile of kRows rows x kTokens tokens over the full groups [g0, g1).

HWY_INLINE __m512i DotBytes(__m512i acc, __m512i unsigned_w, __m512i signed_x) {
#if HWY_TARGET == HWY_AVX3_DL
  return _mm512_dpbusd_epi32(acc, unsigned_w, signed_x);
#else
  return _mm512_add_epi32(
      acc, _mm512_madd_epi16(_mm512_maddubs_epi16(unsigned_w, signed_x), _mm512_set1_epi16(1)));
#endif
}

template <int kRows, int kTokens>
HWY_INLINE void GroupTile(const uint8_t* const* w, const uint8_t* const* ahead,
                          const QuantizedActivations& x, int64_t t0, int64_t g0, int64_t g1,
                          __m512 (&acc)[kRows][kTokens]) {
  const int64_t blocks = x.cols / kBlock;
  const __m512i mask = _mm512_set1_epi8(0x0F);
  for (int64_t g = g0; g < g1; ++g) {
    const int64_t offset = g * kGroupBytes;
    __m512 wscale[kRows];
    for (int r = 0; r < kRows; ++r) {
      if (ahead != nullptr) {  // the group's 288 bytes span at most 6 lines
        for (int64_t line = 0; line < kGroupBytes; line += 64)
          hwy::Prefetch(ahead[r] + offset + line);
        hwy::Prefetch(ahead[r] + offset + kGroupBytes - 1);
      }
      wscale[r] =
          _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[r] + offset)));
    }
    __m512i dot[kRows][kTokens];
    for (int t = 0; t < kTokens; ++t) {
      const __m512i corr = _mm512_loadu_si512(x.corr + (t0 + t) * blocks + g * kGroupBlocks);
      for (int r = 0; r < kRows; ++r) dot[r][t] = corr;
    }
    for (int64_t v = 0; v < 4; ++v) {
      __m512i low[kRows], high[kRows];
      for (int r = 0; r < kRows; ++r) {
        const __m512i packed = _mm512_loadu_si512(w[r] + offset + 32 + 64 * v);
        low[r] = _mm512_and_si512(packed, mask);
        high[r] = _mm512_and_si512(_mm512_srli_epi16(packed, 4), mask);
      }
      for (int t = 0; t < kTokens; ++t) {
        const int8_t* xv = x.x16 + (t0 + t) * x.cols + g * kGroupElements + 128 * v;
        const __m512i xl = _mm512_loadu_si512(xv);
        const __m512i xh = _mm512_loadu_si512(xv + 64);
        for (int r = 0; r < kRows; ++r)
          dot[r][t] = DotBytes(DotBytes(dot[r][t], low[r], xl), high[r], xh);
      }
    }
    for (int t = 0; t < kTokens; ++t) {
      const __m512 xscale = _mm512_loadu_ps(x.d + (t0 + t) * blocks + g * kGroupBlocks);
      for (int r = 0; r < kRows; ++r) {
        acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[r][t]), _mm512_mul_ps(wscale[r], xscale),
                                    acc[r][t]);
      }
    }
  }
}

constexpr bool kFastGroups = true;

#else

constexpr bool kFastGroups = false;

#endif

// ------------------------------------------------------------------------------------------------
// Tiles: rows i0 .. i0 + kRows of `rows`, tokens t0 .. t0 + kTokens, over the full groups
// [g0, g1) and, when `tail`, the tail blocks. `first`: the outputs are set, else added to.

template <int kRows, int kTokens>
HWY_INLINE void RunTile(const MatrixView& w, const RowSet& rows, int64_t i0,
                        const QuantizedActivations& x, int64_t t0, int64_t g0, int64_t g1,
                        bool tail, bool first, bool prefetch, float* y, int64_t y_stride) {
  const int64_t blocks = w.cols / kBlock;
  const int64_t groups = blocks / kGroupBlocks;
  const uint8_t* wr[kRows];
  int64_t slots[kRows];
  for (int r = 0; r < kRows; ++r) {
    wr[r] = w.Row(rows.Row(i0 + r));
    slots[r] = rows.Slot(i0 + r);
  }
  float sums[kRows][kTokens] = {};
  if constexpr (kFastGroups) {
#if HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX3
    // Decode streams the weights from DRAM: the rows two tiles ahead are prefetched group by group
    // (the hardware prefetcher alone keeps too little in flight, as in dot_quant_simd.cc).
    const uint8_t* ahead_rows[kRows];
    const uint8_t* const* ahead = nullptr;
    if (prefetch && i0 + 3 * kRows <= rows.size()) {
      for (int r = 0; r < kRows; ++r) ahead_rows[r] = w.Row(rows.Row(i0 + 2 * kRows + r));
      ahead = ahead_rows;
    }
    __m512 acc[kRows][kTokens];
    for (int r = 0; r < kRows; ++r) {
      for (int t = 0; t < kTokens; ++t) acc[r][t] = _mm512_setzero_ps();
    }
    GroupTile<kRows, kTokens>(wr, ahead, x, t0, g0, g1, acc);
    for (int r = 0; r < kRows; ++r) {
      for (int t = 0; t < kTokens; ++t) sums[r][t] = _mm512_reduce_add_ps(acc[r][t]);
    }
#endif
  } else {
    (void)prefetch;
    for (int r = 0; r < kRows; ++r) {
      PortableRowBlocks(wr[r], blocks, g0 * kGroupBlocks, g1 * kGroupBlocks, x, t0, kTokens,
                        &sums[r][0], 1);
    }
  }
  if (tail) {
    for (int r = 0; r < kRows; ++r) {
      PortableRowBlocks(wr[r], blocks, groups * kGroupBlocks, blocks, x, t0, kTokens, &sums[r][0],
                        1);
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int t = 0; t < kTokens; ++t) {
      float& out = y[(t0 + t) * y_stride + slots[r]];
      out = first ? sums[r][t] : out + sums[r][t];
    }
  }
}

// Row tile of kRows (and single rows for the remainder of [i_begin, i_end)), kTokens tokens.
template <int kRows, int kTokens>
HWY_INLINE void RunRows(const MatrixView& w, const RowSet& rows, int64_t i_begin, int64_t i_end,
                        const QuantizedActivations& x, int64_t t0, int64_t g0, int64_t g1,
                        bool tail, bool first, bool prefetch, float* y, int64_t y_stride) {
  int64_t i = i_begin;
  for (; i + kRows <= i_end; i += kRows) {
    RunTile<kRows, kTokens>(w, rows, i, x, t0, g0, g1, tail, first, prefetch, y, y_stride);
  }
  for (; i < i_end; ++i) {
    RunTile<1, kTokens>(w, rows, i, x, t0, g0, g1, tail, first, false, y, y_stride);
  }
}

// Tokens [t0, t0 + count) for count <= 4, in one tile.
template <int kRows>
HWY_INLINE void RunTokens(int64_t count, const MatrixView& w, const RowSet& rows, int64_t i_begin,
                          int64_t i_end, const QuantizedActivations& x, int64_t t0, int64_t g0,
                          int64_t g1, bool tail, bool first, bool prefetch, float* y,
                          int64_t y_stride) {
  switch (count) {
    case 4:
      return RunRows<kRows, 4>(w, rows, i_begin, i_end, x, t0, g0, g1, tail, first, prefetch, y,
                               y_stride);
    case 3:
      return RunRows<kRows, 3>(w, rows, i_begin, i_end, x, t0, g0, g1, tail, first, prefetch, y,
                               y_stride);
    case 2:
      return RunRows<kRows, 2>(w, rows, i_begin, i_end, x, t0, g0, g1, tail, first, prefetch, y,
                               y_stride);
    default:
      return RunRows<kRows, 1>(w, rows, i_begin, i_end, x, t0, g0, g1, tail, first, prefetch, y,
                               y_stride);
  }
}

constexpr int kTokenTile = 4;
// Two rows of four tokens keep 16 accumulators and the unpacked nibbles of both rows in AVX-512's
// 32 registers; one token takes four rows (four independent VPDPBUSD chains).
constexpr int kBatchRows = 2;
constexpr int kDecodeRows = 4;

void DotRowsQ4x16(const MatrixView& w, RowSet rows, const QuantizedActivations& x, float* y,
                  int64_t y_stride) {
  const int64_t count = rows.size();
  const int64_t blocks = w.cols / kBlock;
  const int64_t groups = blocks / kGroupBlocks;
  const bool has_tail = groups * kGroupBlocks < blocks;
  if (x.n == 1) {
    return RunRows<kDecodeRows, 1>(w, rows, 0, count, x, 0, 0, groups, has_tail, true, true, y,
                                   y_stride);
  }
  if (x.n <= kStreamTokens) {
    // Each row tile is read from memory once, whole, and used for every token while it sits in
    // L1: a step of a few tokens costs about one token's weight traffic.
    for (int64_t i = 0; i < count; i += kBatchRows) {
      const int64_t i_end = std::min(count, i + kBatchRows);
      for (int64_t t = 0; t < x.n; t += kTokenTile) {
        RunTokens<kBatchRows>(std::min<int64_t>(kTokenTile, x.n - t), w, rows, i, i_end, x, t, 0,
                              groups, has_tail, true, t == 0, y, y_stride);
      }
    }
    return;
  }
  // Prompts: column chunks x row blocks, so that a block's slice of weights is reused from cache
  // by every token tile. The tail is one more chunk after the groups.
  const int64_t chunks = (groups + kChunkGroups - 1) / kChunkGroups + (has_tail ? 1 : 0);
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    const int64_t g0 = std::min(groups, chunk * kChunkGroups);
    const int64_t g1 = std::min(groups, g0 + kChunkGroups);
    const bool tail = has_tail && chunk == chunks - 1;
    for (int64_t i0 = 0; i0 < count; i0 += kRowBlock) {
      const int64_t i1 = std::min(count, i0 + kRowBlock);
      for (int64_t t = 0; t < x.n; t += kTokenTile) {
        RunTokens<kBatchRows>(std::min<int64_t>(kTokenTile, x.n - t), w, rows, i0, i1, x, t, g0,
                              tail ? g0 : g1, tail, chunk == 0, false, y, y_stride);
      }
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace pinfer::cpu::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pinfer::cpu::simd {

HWY_EXPORT(InterleaveActivationsQ4x16);
HWY_EXPORT(DotRowsQ4x16);

void InterleaveActivationsQ4x16(const int8_t* q, int64_t cols, int64_t t0, int64_t t1, int8_t* x16,
                                int32_t* corr) {
  HWY_DYNAMIC_DISPATCH(InterleaveActivationsQ4x16)(q, cols, t0, t1, x16, corr);
}

void DotRowsQ4x16(const MatrixView& w, RowSet rows, const QuantizedActivations& x, float* y,
                  int64_t y_stride) {
  HWY_DYNAMIC_DISPATCH(DotRowsQ4x16)(w, rows, x, y, y_stride);
}

}  // namespace pinfer::cpu::simd
#endif  // HWY_ONCE
