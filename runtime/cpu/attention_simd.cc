// Causal GQA attention of one token's query heads for a range of KV heads, over a KV cache of f32,
// f16 or q8_0 rows. Compiled once per Highway target and dispatched at run time; kernels.cc hands
// each thread a token and a contiguous range of KV heads. The loops take the cache's element type
// as a template parameter (CacheRow below decodes a vector of a row to f32), so every type runs
// the same loops: products and sums are f32 whatever the cache holds.
//
// Memory traffic is what matters in decode: every K and V element is read exactly once per token,
// shared by all the query heads of its GQA group, and in address order. The loops are
// position-major: for each cache position the row segment of all the KV heads in the range is
// contiguous, so K and V stream sequentially, four rows at a time. (A head-major order reads
// head_dim-long pieces a KV stride apart, which the hardware prefetcher does not follow across
// pages: measured 2x slower with an f16 cache.) Scores for all (head, position) pairs go to
// scratch, the softmax runs per query head, and the weighted sum of V accumulates into the output
// rows (L1-resident).
#include <algorithm>
#include <cmath>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "runtime/cpu/attention_simd.cc"
#include "format/quant.h"
#include "hwy/cache_control.h"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "runtime/cpu/simd_common-inl.h"
#include "runtime/cpu/simd_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace pinfer::cpu::simd {
namespace HWY_NAMESPACE {

// Element i of a cache row (one position's keys or values) as f32, a vector of lanes at a time.
// `row` is the row's first byte. For q8_0 the row is blocks of 32 elements (an f16 scale and 32
// int8, format/quant.h), so a head of fewer than 32 elements shares its block with its neighbours;
// a vector never straddles two blocks, since its lanes (a power of two, at most 16) divide both the
// head size and 32 and i is a multiple of them.
template <DType kType>
struct CacheRow;

template <>
struct CacheRow<DType::kF32> {
  template <class D>
  static HWY_INLINE hn::Vec<D> Load(D d, const uint8_t* row, int64_t i) {
    return hn::LoadU(d, reinterpret_cast<const float*>(row) + i);
  }
};

template <>
struct CacheRow<DType::kF16> {
  template <class D>
  static HWY_INLINE hn::Vec<D> Load(D d, const uint8_t* row, int64_t i) {
    return FloatElement<hwy::float16_t>::Load(d, reinterpret_cast<const hwy::float16_t*>(row) + i);
  }
};

template <>
struct CacheRow<DType::kQ8_0> {
  template <class D>
  static HWY_INLINE hn::Vec<D> Load(D d, const uint8_t* row, int64_t i) {
    const uint8_t* block = row + (i / kQuantBlockElements) * sizeof(BlockQ8_0);
    const int8_t* values =
        reinterpret_cast<const int8_t*>(block + offsetof(BlockQ8_0, qs)) + i % kQuantBlockElements;
    const auto ints =
        hn::PromoteTo(hn::Rebind<int32_t, D>(), hn::LoadU(hn::Rebind<int8_t, D>(), values));
    return hn::Mul(hn::ConvertTo(d, ints), hn::Set(d, BlockScale(block)));
  }
};

constexpr int kPositionTile = 4;  // SumOfLanes4 reduces four at once
// Query heads of a GQA group handled together, so that each K/V vector is loaded once for all of
// them: kGroupTile x kPositionTile accumulators.
constexpr int kGroupTile = HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL ? 4 : 2;

// Scores of query heads [g0, g0 + kHeads) of KV head kv for positions p .. p + 3.
// kp[j]: the cache row of position p + j; `first`: the element of the row where KV head kv starts.
template <int kHeads, DType kType, class D>
HWY_INLINE void ScoreTile(D d, const AttentionShape& s, const float* q_kv, const uint8_t* const* kp,
                          int64_t first, int64_t g0, float scale, float* scores_kv, int64_t n_keys,
                          int64_t p) {
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  hn::Vec<D> acc[kHeads][kPositionTile];
  for (int g = 0; g < kHeads; ++g) {
    for (int j = 0; j < kPositionTile; ++j) acc[g][j] = hn::Zero(d);
  }
  for (int64_t e = 0; e < s.head_dim; e += lanes) {
    hn::Vec<D> kv_e[kPositionTile];
    for (int j = 0; j < kPositionTile; ++j) {
      kv_e[j] = CacheRow<kType>::Load(d, kp[j], first + e);
    }
    for (int g = 0; g < kHeads; ++g) {
      const auto qv = hn::LoadU(d, q_kv + (g0 + g) * s.head_dim + e);
      for (int j = 0; j < kPositionTile; ++j) acc[g][j] = hn::MulAdd(qv, kv_e[j], acc[g][j]);
    }
  }
  for (int g = 0; g < kHeads; ++g) {
    float* out_scores = scores_kv + (g0 + g) * n_keys + p;
    SumOfLanes4(d, acc[g][0], acc[g][1], acc[g][2], acc[g][3], out_scores);
    for (int j = 0; j < kPositionTile; ++j) out_scores[j] *= scale;
  }
}

// out_h += Σ_j probs[h][p + j] · v_{p + j} for query heads [g0, g0 + kHeads) of KV head kv.
template <int kHeads, DType kType, class D>
HWY_INLINE void ValueTile(D d, const AttentionShape& s, const uint8_t* const* vp, int64_t tile,
                          int64_t first, int64_t g0, const float* scores_kv, int64_t n_keys,
                          int64_t p, float* out_kv) {
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  hn::Vec<D> prob[kHeads][kPositionTile];
  for (int g = 0; g < kHeads; ++g) {
    for (int64_t j = 0; j < tile; ++j)
      prob[g][j] = hn::Set(d, scores_kv[(g0 + g) * n_keys + p + j]);
  }
  for (int64_t e = 0; e < s.head_dim; e += lanes) {
    hn::Vec<D> v_e[kPositionTile];
    for (int64_t j = 0; j < tile; ++j) v_e[j] = CacheRow<kType>::Load(d, vp[j], first + e);
    for (int g = 0; g < kHeads; ++g) {
      float* o = out_kv + (g0 + g) * s.head_dim + e;
      auto acc = hn::LoadU(d, o);
      for (int64_t j = 0; j < tile; ++j) acc = hn::MulAdd(prob[g][j], v_e[j], acc);
      hn::StoreU(acc, d, o);
    }
  }
}

// k, v: the cache rows of positions 0, 1, ... `row_bytes` apart.
template <DType kType, class D>
HWY_INLINE void AttentionRangeD(D d, const AttentionShape& s, const uint8_t* k, const uint8_t* v,
                                size_t row_bytes, const float* q, int64_t kv0, int64_t kv1,
                                int64_t n_keys, float* out, float* scores) {
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  const int64_t group = s.n_heads / s.n_kv_heads;
  const int64_t heads = (kv1 - kv0) * group;  // query heads in the range
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.head_dim)));
  const float* q_range = q + kv0 * group * s.head_dim;
  float* out_range = out + kv0 * group * s.head_dim;

  // scores[h * n_keys + p] = scale · q_h · k_p (query head h of the range), four positions at a
  // time (four independent sums per head, reduced together), the heads of a group together.
  int64_t p = 0;
  for (; p + kPositionTile <= n_keys; p += kPositionTile) {
    const uint8_t* kp[kPositionTile];
    for (int j = 0; j < kPositionTile; ++j) kp[j] = k + static_cast<size_t>(p + j) * row_bytes;
    for (int64_t kv = 0; kv < kv1 - kv0; ++kv) {
      const float* q_kv = q_range + kv * group * s.head_dim;
      float* scores_kv = scores + kv * group * n_keys;
      const int64_t first = (kv0 + kv) * s.head_dim;
      int64_t g = 0;
      for (; g + kGroupTile <= group; g += kGroupTile) {
        ScoreTile<kGroupTile, kType>(d, s, q_kv, kp, first, g, scale, scores_kv, n_keys, p);
      }
      for (; g < group; ++g) {
        ScoreTile<1, kType>(d, s, q_kv, kp, first, g, scale, scores_kv, n_keys, p);
      }
    }
  }
  for (; p < n_keys; ++p) {
    const uint8_t* kp = k + static_cast<size_t>(p) * row_bytes;
    for (int64_t kv = 0; kv < kv1 - kv0; ++kv) {
      const int64_t first = (kv0 + kv) * s.head_dim;
      for (int64_t g = 0; g < group; ++g) {
        const int64_t h = kv * group + g;
        const float* qh = q_range + h * s.head_dim;
        auto acc = hn::Zero(d);
        for (int64_t e = 0; e < s.head_dim; e += lanes) {
          acc = hn::MulAdd(hn::LoadU(d, qh + e), CacheRow<kType>::Load(d, kp, first + e), acc);
        }
        scores[h * n_keys + p] = hn::GetLane(hn::SumOfLanes(d, acc)) * scale;
      }
    }
  }
  for (int64_t h = 0; h < heads; ++h) SoftmaxInPlace(scores + h * n_keys, n_keys);

  // out_h = Σ_p probs[h][p] · v_p, four positions at a time (each output vector is loaded and
  // stored once per four value rows), the heads of a group together.
  std::fill(out_range, out_range + heads * s.head_dim, 0.0f);
  for (p = 0; p < n_keys; p += kPositionTile) {
    const int64_t tile = std::min<int64_t>(kPositionTile, n_keys - p);
    const uint8_t* vp[kPositionTile];
    for (int64_t j = 0; j < tile; ++j) vp[j] = v + static_cast<size_t>(p + j) * row_bytes;
    for (int64_t kv = 0; kv < kv1 - kv0; ++kv) {
      const float* scores_kv = scores + kv * group * n_keys;
      float* out_kv = out_range + kv * group * s.head_dim;
      const int64_t first = (kv0 + kv) * s.head_dim;
      int64_t g = 0;
      for (; g + kGroupTile <= group; g += kGroupTile) {
        ValueTile<kGroupTile, kType>(d, s, vp, tile, first, g, scores_kv, n_keys, p, out_kv);
      }
      for (; g < group; ++g) {
        ValueTile<1, kType>(d, s, vp, tile, first, g, scores_kv, n_keys, p, out_kv);
      }
    }
  }
}

template <DType kType>
HWY_INLINE void AttentionRangeT(const AttentionShape& shape, const uint8_t* k, const uint8_t* v,
                                const float* q, int64_t kv0, int64_t kv1, int64_t n_keys,
                                float* out, float* scratch) {
  const size_t row_bytes = static_cast<size_t>(
      shape.kv_stride / GetDTypeInfo(kType).block_elements * GetDTypeInfo(kType).block_bytes);
  // The widest vector that divides head_dim (tiny models have head_dim 8).
  const DF df;
  if (shape.head_dim % static_cast<int64_t>(hn::Lanes(df)) == 0) {
    return AttentionRangeD<kType>(df, shape, k, v, row_bytes, q, kv0, kv1, n_keys, out, scratch);
  }
  if (shape.head_dim % 8 == 0) {
    return AttentionRangeD<kType>(hn::CappedTag<float, 8>(), shape, k, v, row_bytes, q, kv0, kv1,
                                  n_keys, out, scratch);
  }
  if (shape.head_dim % 4 == 0) {
    return AttentionRangeD<kType>(hn::CappedTag<float, 4>(), shape, k, v, row_bytes, q, kv0, kv1,
                                  n_keys, out, scratch);
  }
  AttentionRangeD<kType>(hn::CappedTag<float, 1>(), shape, k, v, row_bytes, q, kv0, kv1, n_keys,
                         out, scratch);
}

void AttentionRange(const AttentionShape& shape, DType kv_type, const float* q, const void* k,
                    const void* v, int64_t kv0, int64_t kv1, int64_t n_keys, float* out,
                    float* scratch) {
  const auto* kb = static_cast<const uint8_t*>(k);
  const auto* vb = static_cast<const uint8_t*>(v);
  switch (kv_type) {
    case DType::kF32:
      return AttentionRangeT<DType::kF32>(shape, kb, vb, q, kv0, kv1, n_keys, out, scratch);
    case DType::kF16:
      return AttentionRangeT<DType::kF16>(shape, kb, vb, q, kv0, kv1, n_keys, out, scratch);
    case DType::kQ8_0:
      return AttentionRangeT<DType::kQ8_0>(shape, kb, vb, q, kv0, kv1, n_keys, out, scratch);
    default:
      return;  // cpu::Attention accepts only the three cache types
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace pinfer::cpu::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pinfer::cpu::simd {

HWY_EXPORT(AttentionRange);

void AttentionRange(const AttentionShape& shape, DType kv_type, const float* q, const void* k,
                    const void* v, int64_t kv0, int64_t kv1, int64_t n_keys, float* out,
                    float* scratch) {
  HWY_DYNAMIC_DISPATCH(AttentionRange)(shape, kv_type, q, k, v, kv0, kv1, n_keys, out, scratch);
}

int64_t AttentionScratchFloats(const AttentionShape& shape, int64_t n_keys) {
  return shape.n_heads * n_keys;
}

}  // namespace pinfer::cpu::simd
#endif  // HWY_ONCE
