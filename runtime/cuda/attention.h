// Causal self-attention with the KV cache in device memory (decode n = 1, prefill n > 1, GQA).
//
// The runtime does not call these yet: the executor runs attention on the CPU. They are the
// kernels of the plan's attention on the GPU (a layer's attention weights, norms, RoPE and an f16
// KV cache on the device), tested against cpu::Attention and benchmarked until that step uses them.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "format/dtype.h"
#include "runtime/cuda/stream.h"

namespace pinfer::cuda {

// As cpu::AttentionShape, plus the cache element type: f32 (the CPU's) or f16 (half the VRAM).
struct AttentionShape {
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t kv_stride = 0;  // elements between consecutive positions in k and v
  DType kv_dtype = DType::kF32;
};

// The semantics of cpu::Attention: `n` queries at positions [pos0, pos0 + n) against a cache that
// already holds positions [0, pos0 + n).
//   q:   [n, n_heads, head_dim] f32
//   k,v: element (p, h, d) at k[p * kv_stride + h * head_dim + d], in kv_dtype
//   out: [n, n_heads, head_dim] f32
// Query head h uses KV head h / (n_heads / n_kv_heads); scale 1/sqrt(head_dim).
absl::Status Attention(Stream& stream, const AttentionShape& shape, const float* q,
                       const void* k_cache, const void* v_cache, int64_t pos0, int64_t n,
                       float* out);

// Stores the new keys and values ([n, n_kv_heads * head_dim] f32, e.g. the K and V projections
// after RoPE) at positions [pos0, pos0 + n) of the caches, converting to kv_dtype.
absl::Status WriteKvCache(Stream& stream, const AttentionShape& shape, const float* k_new,
                          const float* v_new, int64_t pos0, int64_t n, void* k_cache,
                          void* v_cache);

}  // namespace pinfer::cuda
