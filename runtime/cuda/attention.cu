// Causal self-attention over the KV cache, split along the keys ("flash decoding"): a thread block
// scores one query head against up to kAttentionKeysPerSplit keys, keeps their softmax numerator
// locally (max m, sum l, and Σ e^(s - m) v), and a second kernel merges the splits of each query:
//   out = Σ_s e^(m_s - M) o_s / Σ_s e^(m_s - M) l_s,   M = max_s m_s.
// Decode (one query) gets ceil(L / 256) blocks per head, enough to fill the GPU for long contexts;
// prefill runs the same kernel with one grid row per query position (causal: query t sees keys
// [0, pos0 + t]). It is plain FMA work, not tensor cores: fine for decode, the first thing to
// replace if long-prompt prefill time matters.
#include "runtime/cuda/device_common.cuh"
#include "runtime/cuda/launch.h"

namespace pinfer::cuda::internal {
namespace {

constexpr int kAttentionThreads = 128;
constexpr int kWarps = kAttentionThreads / kWarpSize;

template <bool kF16>
__device__ __forceinline__ float LoadKv(const void* base, int64_t index) {
  if constexpr (kF16) {
    return HalfBitsToFloat(__ldg(static_cast<const uint16_t*>(base) + index));
  } else {
    return __ldg(static_cast<const float*>(base) + index);
  }
}

// partials layout per (query t, head h, split s): [head_dim] o, then m, then l.
__device__ __forceinline__ int64_t PartialIndex(const AttentionArgs& args, int64_t t, int64_t h,
                                                int64_t s, int64_t splits) {
  return ((t * args.n_heads + h) * splits + s) * (args.head_dim + 2);
}

template <bool kF16>
__global__ void __launch_bounds__(kAttentionThreads)
    AttentionSplitKernel(AttentionArgs args, const float* q, const void* k, const void* v,
                         int64_t pos0, int64_t splits, float* partials) {
  extern __shared__ float query[];  // head_dim floats
  __shared__ float weights[kAttentionKeysPerSplit];
  __shared__ float scratch[kWarpSize];

  const int64_t split = blockIdx.x;
  const int64_t h = blockIdx.y;
  const int64_t t = blockIdx.z;
  const int64_t n_keys = pos0 + t + 1;
  const int64_t key0 = split * kAttentionKeysPerSplit;
  if (key0 >= n_keys) return;  // beyond this query's causal window (uniform over the block)
  const int64_t key1 = min(n_keys, key0 + kAttentionKeysPerSplit);
  const int64_t hd = args.head_dim;
  const int64_t kv_offset = (h / (args.n_heads / args.n_kv_heads)) * hd;  // GQA
  const float scale = rsqrtf(static_cast<float>(hd));

  for (int64_t d = threadIdx.x; d < hd; d += blockDim.x) {
    query[d] = q[(t * args.n_heads + h) * hd + d];
  }
  __syncthreads();

  // Scores: one warp per key, lanes across head_dim.
  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  for (int64_t p = key0 + warp; p < key1; p += kWarps) {
    const int64_t row = p * args.kv_stride + kv_offset;
    float dot = 0.0f;
    for (int64_t d = lane; d < hd; d += kWarpSize)
      dot = fmaf(query[d], LoadKv<kF16>(k, row + d), dot);
    dot = WarpSum(dot);
    if (lane == 0) weights[p - key0] = dot * scale;
  }
  __syncthreads();

  const int64_t n = key1 - key0;
  float m = -INFINITY;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, weights[i]);
  m = BlockMax(m, scratch);
  float l = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float e = expf(weights[i] - m);
    weights[i] = e;
    l += e;
  }
  l = BlockSum(l, scratch);  // synchronises: every e is in `weights` afterwards

  float* out = partials + PartialIndex(args, t, h, split, splits);
  for (int64_t d = threadIdx.x; d < hd; d += blockDim.x) {
    float acc = 0.0f;
    for (int64_t i = 0; i < n; ++i) {
      acc = fmaf(weights[i], LoadKv<kF16>(v, (key0 + i) * args.kv_stride + kv_offset + d), acc);
    }
    out[d] = acc;
  }
  if (threadIdx.x == 0) {
    out[hd] = m;
    out[hd + 1] = l;
  }
}

__global__ void __launch_bounds__(kAttentionThreads)
    AttentionCombineKernel(AttentionArgs args, int64_t pos0, int64_t splits, const float* partials,
                           float* out) {
  const int64_t h = blockIdx.x;
  const int64_t t = blockIdx.y;
  const int64_t hd = args.head_dim;
  const int64_t used = (pos0 + t + 1 + kAttentionKeysPerSplit - 1) / kAttentionKeysPerSplit;
  const float* base = partials + PartialIndex(args, t, h, 0, splits);
  const int64_t stride = hd + 2;
  float max = -INFINITY;
  for (int64_t s = 0; s < used; ++s) max = fmaxf(max, base[s * stride + hd]);
  float denominator = 0.0f;
  for (int64_t s = 0; s < used; ++s) {
    denominator += expf(base[s * stride + hd] - max) * base[s * stride + hd + 1];
  }
  for (int64_t d = threadIdx.x; d < hd; d += blockDim.x) {
    float numerator = 0.0f;
    for (int64_t s = 0; s < used; ++s) {
      numerator += expf(base[s * stride + hd] - max) * base[s * stride + d];
    }
    out[(t * args.n_heads + h) * hd + d] = numerator / denominator;
  }
}

template <bool kF16>
__global__ void WriteKvKernel(AttentionArgs args, const float* k_new, const float* v_new,
                              int64_t pos0, int64_t n, void* k_cache, void* v_cache) {
  const int64_t width = args.n_kv_heads * args.head_dim;
  const int64_t total = n * width;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = idx / width;
    const int64_t j = idx % width;
    const int64_t dst = (pos0 + t) * args.kv_stride + j;
    if constexpr (kF16) {
      static_cast<__half*>(k_cache)[dst] = __float2half_rn(k_new[idx]);
      static_cast<__half*>(v_cache)[dst] = __float2half_rn(v_new[idx]);
    } else {
      static_cast<float*>(k_cache)[dst] = k_new[idx];
      static_cast<float*>(v_cache)[dst] = v_new[idx];
    }
  }
}

}  // namespace

cudaError_t LaunchAttention(const AttentionArgs& args, const float* q, const void* k, const void* v,
                            int64_t pos0, int64_t n, float* partials, float* out,
                            cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const int64_t splits = (pos0 + n + kAttentionKeysPerSplit - 1) / kAttentionKeysPerSplit;
  const dim3 grid(static_cast<unsigned>(splits), static_cast<unsigned>(args.n_heads),
                  static_cast<unsigned>(n));
  const size_t shared = static_cast<size_t>(args.head_dim) * sizeof(float);
  if (args.kv_f16) {
    AttentionSplitKernel<true>
        <<<grid, kAttentionThreads, shared, stream>>>(args, q, k, v, pos0, splits, partials);
  } else {
    AttentionSplitKernel<false>
        <<<grid, kAttentionThreads, shared, stream>>>(args, q, k, v, pos0, splits, partials);
  }
  if (cudaError_t error = cudaGetLastError(); error != cudaSuccess) return error;
  const dim3 combine_grid(static_cast<unsigned>(args.n_heads), static_cast<unsigned>(n));
  AttentionCombineKernel<<<combine_grid, kAttentionThreads, 0, stream>>>(args, pos0, splits,
                                                                         partials, out);
  return cudaGetLastError();
}

cudaError_t LaunchWriteKv(const AttentionArgs& args, const float* k_new, const float* v_new,
                          int64_t pos0, int64_t n, void* k_cache, void* v_cache,
                          cudaStream_t stream) {
  const int64_t total = n * args.n_kv_heads * args.head_dim;
  if (total == 0) return cudaSuccess;
  if (args.kv_f16) {
    WriteKvKernel<true><<<ElementwiseBlocks(total), kElementwiseThreads, 0, stream>>>(
        args, k_new, v_new, pos0, n, k_cache, v_cache);
  } else {
    WriteKvKernel<false><<<ElementwiseBlocks(total), kElementwiseThreads, 0, stream>>>(
        args, k_new, v_new, pos0, n, k_cache, v_cache);
  }
  return cudaGetLastError();
}

}  // namespace pinfer::cuda::internal
