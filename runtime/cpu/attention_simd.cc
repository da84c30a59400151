// Causal GQA attention of one token's query heads for a range of KV heads, over the f32 KV cache.
// Compiled once per Highway target and dispatched at run time; kernels.cc hands each thread a
// token and a contiguous range of KV heads. The loops take the cache's element type as a template
// parameter (loaded through FloatElement, as the float dot products do), so that a half-precision
// cache needs only its entry point.
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
#include "hwy/cache_control.h"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "runtime/cpu/simd_common-inl.h"
#include "runtime/cpu/simd_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace pinfer::cpu::simd {
namespace HWY_NAMESPACE {

constexpr int kPositionTile = 4;  // SumOfLanes4 reduces four at once
// Query heads of a GQA group handled together, so that each K/V vector is loaded once for all of
// them: kGroupTile x kPositionTile accumulators.
constexpr int kGroupTile = HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL ? 4 : 2;

// Scores of query heads [g0, g0 + kHeads) of KV head kv for positions p .. p + 3.
template <int kHeads, typename T, class D>
HWY_INLINE void ScoreTile(D d, const AttentionShape& s, const float* q_kv, const T* const* kp,
                          int64_t kv, int64_t g0, float scale, float* scores_kv, int64_t n_keys,
                          int64_t p) {
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  hn::Vec<D> acc[kHeads][kPositionTile];
  for (int g = 0; g < kHeads; ++g) {
    for (int j = 0; j < kPositionTile; ++j) acc[g][j] = hn::Zero(d);
  }
  for (int64_t e = 0; e < s.head_dim; e += lanes) {
    hn::Vec<D> kv_e[kPositionTile];
    for (int j = 0; j < kPositionTile; ++j) {
      kv_e[j] = FloatElement<T>::Load(d, kp[j] + kv * s.head_dim + e);
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
template <int kHeads, typename T, class D>
HWY_INLINE void ValueTile(D d, const AttentionShape& s, const T* const* vp, int64_t tile,
                          int64_t kv, int64_t g0, const float* scores_kv, int64_t n_keys, int64_t p,
                          float* out_kv) {
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  hn::Vec<D> prob[kHeads][kPositionTile];
  for (int g = 0; g < kHeads; ++g) {
    for (int64_t j = 0; j < tile; ++j)
      prob[g][j] = hn::Set(d, scores_kv[(g0 + g) * n_keys + p + j]);
  }
  for (int64_t e = 0; e < s.head_dim; e += lanes) {
    hn::Vec<D> v_e[kPositionTile];
    for (int64_t j = 0; j < tile; ++j)
      v_e[j] = FloatElement<T>::Load(d, vp[j] + kv * s.head_dim + e);
    for (int g = 0; g < kHeads; ++g) {
      float* o = out_kv + (g0 + g) * s.head_dim + e;
      auto acc = hn::LoadU(d, o);
      for (int64_t j = 0; j < tile; ++j) acc = hn::MulAdd(prob[g][j], v_e[j], acc);
      hn::StoreU(acc, d, o);
    }
  }
}

template <typename T, class D>
HWY_INLINE void AttentionRangeD(D d, const AttentionShape& s, const float* q, const T* k,
                                const T* v, int64_t kv0, int64_t kv1, int64_t n_keys, float* out,
                                float* scores) {
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
    const T* kp[kPositionTile];
    for (int j = 0; j < kPositionTile; ++j) kp[j] = k + (p + j) * s.kv_stride + kv0 * s.head_dim;
    for (int64_t kv = 0; kv < kv1 - kv0; ++kv) {
      const float* q_kv = q_range + kv * group * s.head_dim;
      float* scores_kv = scores + kv * group * n_keys;
      int64_t g = 0;
      for (; g + kGroupTile <= group; g += kGroupTile) {
        ScoreTile<kGroupTile>(d, s, q_kv, kp, kv, g, scale, scores_kv, n_keys, p);
      }
      for (; g < group; ++g) ScoreTile<1>(d, s, q_kv, kp, kv, g, scale, scores_kv, n_keys, p);
    }
  }
  for (; p < n_keys; ++p) {
    const T* kp = k + p * s.kv_stride + kv0 * s.head_dim;
    for (int64_t kv = 0; kv < kv1 - kv0; ++kv) {
      for (int64_t g = 0; g < group; ++g) {
        const int64_t h = kv * group + g;
        const float* qh = q_range + h * s.head_dim;
        auto acc = hn::Zero(d);
        for (int64_t e = 0; e < s.head_dim; e += lanes) {
          acc = hn::MulAdd(hn::LoadU(d, qh + e), FloatElement<T>::Load(d, kp + kv * s.head_dim + e),
                           acc);
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
    const T* vp[kPositionTile];
    for (int64_t j = 0; j < tile; ++j) vp[j] = v + (p + j) * s.kv_stride + kv0 * s.head_dim;
    for (int64_t kv = 0; kv < kv1 - kv0; ++kv) {
      const float* scores_kv = scores + kv * group * n_keys;
      float* out_kv = out_range + kv * group * s.head_dim;
      int64_t g = 0;
      for (; g + kGroupTile <= group; g += kGroupTile) {
        ValueTile<kGroupTile>(d, s, vp, tile, kv, g, scores_kv, n_keys, p, out_kv);
      }
      for (; g < group; ++g) ValueTile<1>(d, s, vp, tile, kv, g, scores_kv, n_keys, p, out_kv);
    }
  }
}

template <typename T>
HWY_INLINE void AttentionRangeT(const AttentionShape& shape, const float* q, const T* k, const T* v,
                                int64_t kv0, int64_t kv1, int64_t n_keys, float* out,
                                float* scratch) {
  // The widest vector that divides head_dim (tiny models have head_dim 8).
  const DF df;
  if (shape.head_dim % static_cast<int64_t>(hn::Lanes(df)) == 0) {
    return AttentionRangeD(df, shape, q, k, v, kv0, kv1, n_keys, out, scratch);
  }
  if (shape.head_dim % 8 == 0) {
    return AttentionRangeD(hn::CappedTag<float, 8>(), shape, q, k, v, kv0, kv1, n_keys, out,
                           scratch);
  }
  if (shape.head_dim % 4 == 0) {
    return AttentionRangeD(hn::CappedTag<float, 4>(), shape, q, k, v, kv0, kv1, n_keys, out,
                           scratch);
  }
  AttentionRangeD(hn::CappedTag<float, 1>(), shape, q, k, v, kv0, kv1, n_keys, out, scratch);
}

void AttentionRange(const AttentionShape& shape, const float* q, const float* k, const float* v,
                    int64_t kv0, int64_t kv1, int64_t n_keys, float* out, float* scratch) {
  AttentionRangeT(shape, q, k, v, kv0, kv1, n_keys, out, scratch);
}

}  // namespace HWY_NAMESPACE
}  // namespace pinfer::cpu::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pinfer::cpu::simd {

HWY_EXPORT(AttentionRange);

void AttentionRange(const AttentionShape& shape, const float* q, const float* k, const float* v,
                    int64_t kv0, int64_t kv1, int64_t n_keys, float* out, float* scratch) {
  HWY_DYNAMIC_DISPATCH(AttentionRange)(shape, q, k, v, kv0, kv1, n_keys, out, scratch);
}

int64_t AttentionScratchFloats(const AttentionShape& shape, int64_t n_keys) {
  return shape.n_heads * n_keys;
}

}  // namespace pinfer::cpu::simd
#endif  // HWY_ONCE
