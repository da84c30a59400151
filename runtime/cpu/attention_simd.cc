// Causal GQA attention for one KV head and its group of query heads, over an f32 or f16 KV cache.
// Compiled once per Highway target and dispatched at run time; kernels.cc spreads (token, KV head)
// pairs over the threads.
//
// Memory traffic is what matters in decode: the K and V rows of a KV head are each read once for
// all the query heads of its group (GQA shares them), K in tiles of four keys against each query
// head (the tile stays in L1 while the heads pass over it), V row by row into per-head output
// accumulators that stay in L1.
#include <algorithm>
#include <cmath>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "runtime/cpu/attention_simd.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "runtime/cpu/simd_common-inl.h"
#include "runtime/cpu/simd_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace pinfer::cpu::simd {
namespace HWY_NAMESPACE {

constexpr int kKeyTile = 4;

// scores[g * n_keys + p] = scale · q_g · k_p.
template <typename T, class D>
HWY_INLINE void Scores(D d, const AttentionShape& s, const float* q_group, const T* k,
                       int64_t kv_head, int64_t n_keys, int64_t group, float* scores) {
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.head_dim)));
  const T* k_head = k + kv_head * s.head_dim;
  int64_t p = 0;
  for (; p + kKeyTile <= n_keys; p += kKeyTile) {
    const T* kp[kKeyTile];
    for (int j = 0; j < kKeyTile; ++j) kp[j] = k_head + (p + j) * s.kv_stride;
    for (int64_t g = 0; g < group; ++g) {
      const float* qg = q_group + g * s.head_dim;
      hn::Vec<D> acc[kKeyTile];
      for (int j = 0; j < kKeyTile; ++j) acc[j] = hn::Zero(d);
      for (int64_t e = 0; e < s.head_dim; e += lanes) {
        const auto qv = hn::LoadU(d, qg + e);
        for (int j = 0; j < kKeyTile; ++j) {
          acc[j] = hn::MulAdd(qv, FloatElement<T>::Load(d, kp[j] + e), acc[j]);
        }
      }
      for (int j = 0; j < kKeyTile; ++j) {
        scores[g * n_keys + p + j] = hn::GetLane(hn::SumOfLanes(d, acc[j])) * scale;
      }
    }
  }
  for (; p < n_keys; ++p) {
    const T* kp = k_head + p * s.kv_stride;
    for (int64_t g = 0; g < group; ++g) {
      const float* qg = q_group + g * s.head_dim;
      auto acc = hn::Zero(d);
      for (int64_t e = 0; e < s.head_dim; e += lanes) {
        acc = hn::MulAdd(hn::LoadU(d, qg + e), FloatElement<T>::Load(d, kp + e), acc);
      }
      scores[g * n_keys + p] = hn::GetLane(hn::SumOfLanes(d, acc)) * scale;
    }
  }
}

// out_g = Σ_p probs[g][p] · v_p, accumulated in out_group (L1) row by row of V.
template <typename T, class D>
HWY_INLINE void WeightedValues(D d, const AttentionShape& s, const float* probs, const T* v,
                               int64_t kv_head, int64_t n_keys, int64_t group, float* out_group) {
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  std::fill(out_group, out_group + group * s.head_dim, 0.0f);
  const T* v_head = v + kv_head * s.head_dim;
  for (int64_t p = 0; p < n_keys; ++p) {
    const T* vp = v_head + p * s.kv_stride;
    for (int64_t e = 0; e < s.head_dim; e += lanes) {
      const auto vv = FloatElement<T>::Load(d, vp + e);
      for (int64_t g = 0; g < group; ++g) {
        float* o = out_group + g * s.head_dim + e;
        hn::StoreU(hn::MulAdd(hn::Set(d, probs[g * n_keys + p]), vv, hn::LoadU(d, o)), d, o);
      }
    }
  }
}

template <typename T, class D>
HWY_INLINE void AttentionGroupD(D d, const AttentionShape& s, const float* q_group, const T* k,
                                const T* v, int64_t kv_head, int64_t n_keys, float* out_group,
                                float* scratch) {
  const int64_t group = s.n_heads / s.n_kv_heads;
  Scores(d, s, q_group, k, kv_head, n_keys, group, scratch);
  for (int64_t g = 0; g < group; ++g) SoftmaxInPlace(scratch + g * n_keys, n_keys);
  WeightedValues(d, s, scratch, v, kv_head, n_keys, group, out_group);
}

template <typename T>
HWY_INLINE void AttentionGroupT(const AttentionShape& shape, const float* q_group, const T* k,
                                const T* v, int64_t kv_head, int64_t n_keys, float* out_group,
                                float* scratch) {
  // The widest vector that divides head_dim (tiny models have head_dim 8).
  const DF df;
  if (shape.head_dim % static_cast<int64_t>(hn::Lanes(df)) == 0) {
    return AttentionGroupD(df, shape, q_group, k, v, kv_head, n_keys, out_group, scratch);
  }
  if (shape.head_dim % 8 == 0) {
    return AttentionGroupD(hn::CappedTag<float, 8>(), shape, q_group, k, v, kv_head, n_keys,
                           out_group, scratch);
  }
  if (shape.head_dim % 4 == 0) {
    return AttentionGroupD(hn::CappedTag<float, 4>(), shape, q_group, k, v, kv_head, n_keys,
                           out_group, scratch);
  }
  AttentionGroupD(hn::CappedTag<float, 1>(), shape, q_group, k, v, kv_head, n_keys, out_group,
                  scratch);
}

void AttentionGroup(const AttentionShape& shape, const float* q_group, const void* k, const void* v,
                    KvType kv_type, int64_t kv_head, int64_t n_keys, float* out_group,
                    float* scratch) {
  if (kv_type == KvType::kF16) {
    return AttentionGroupT(shape, q_group, static_cast<const hwy::float16_t*>(k),
                           static_cast<const hwy::float16_t*>(v), kv_head, n_keys, out_group,
                           scratch);
  }
  AttentionGroupT(shape, q_group, static_cast<const float*>(k), static_cast<const float*>(v),
                  kv_head, n_keys, out_group, scratch);
}

}  // namespace HWY_NAMESPACE
}  // namespace pinfer::cpu::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pinfer::cpu::simd {

HWY_EXPORT(AttentionGroup);

void AttentionGroup(const AttentionShape& shape, const float* q_group, const void* k, const void* v,
                    KvType kv_type, int64_t kv_head, int64_t n_keys, float* out_group,
                    float* scratch) {
  HWY_DYNAMIC_DISPATCH(AttentionGroup)
  (shape, q_group, k, v, kv_type, kv_head, n_keys, out_group, scratch);
}

int64_t AttentionScratchFloats(const AttentionShape& shape, int64_t n_keys) {
  return shape.n_heads / shape.n_kv_heads * n_keys;
}

}  // namespace pinfer::cpu::simd
#endif  // HWY_ONCE
