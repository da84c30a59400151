#include "runtime/cuda/attention.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "runtime/cuda/checks.h"
#include "runtime/cuda/cuda_status.h"
#include "runtime/cuda/launch.h"
#include "runtime/cuda/stream_internal.h"
#include "runtime/cuda/tuning.h"

namespace pinfer::cuda {
namespace {

absl::StatusOr<internal::AttentionArgs> CheckShape(const AttentionShape& shape, int64_t pos0,
                                                   int64_t n, std::string_view op) {
  if (shape.n_heads <= 0 || shape.n_kv_heads <= 0 || shape.n_heads % shape.n_kv_heads != 0 ||
      shape.head_dim <= 0 || shape.kv_stride < shape.n_kv_heads * shape.head_dim) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: bad shape (%d heads, %d kv heads, head_dim %d, kv_stride %d): heads must be a "
        "multiple of kv heads and kv_stride at least kv heads * head_dim",
        op, shape.n_heads, shape.n_kv_heads, shape.head_dim, shape.kv_stride));
  }
  if (shape.kv_dtype != DType::kF32 && shape.kv_dtype != DType::kF16) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: the KV cache must be f32 or f16", op));
  }
  if (pos0 < 0 || n < 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: bad positions (pos0 %d, n %d)", op, pos0, n));
  }
  internal::AttentionArgs args;
  args.n_heads = shape.n_heads;
  args.n_kv_heads = shape.n_kv_heads;
  args.head_dim = shape.head_dim;
  args.kv_stride = shape.kv_stride;
  args.kv_f16 = shape.kv_dtype == DType::kF16;
  return args;
}

}  // namespace

absl::Status Attention(Stream& stream, const AttentionShape& shape, const float* q,
                       const void* k_cache, const void* v_cache, int64_t pos0, int64_t n,
                       float* out) {
  constexpr std::string_view kOp = "Attention";
  absl::StatusOr<internal::AttentionArgs> args = CheckShape(shape, pos0, n, kOp);
  if (!args.ok()) return args.status();
  if (n == 0) return absl::OkStatus();
  if (absl::Status s = internal::CheckNotNull(q, kOp, "q"); !s.ok()) return s;
  if (absl::Status s = internal::CheckNotNull(k_cache, kOp, "k_cache"); !s.ok()) return s;
  if (absl::Status s = internal::CheckNotNull(v_cache, kOp, "v_cache"); !s.ok()) return s;
  if (absl::Status s = internal::CheckNotNull(out, kOp, "out"); !s.ok()) return s;
  // Shared memory holds the query row.
  constexpr int64_t kMaxHeadDim = 4096;
  if (shape.head_dim > kMaxHeadDim) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: head_dim %d is above %d", kOp, shape.head_dim, kMaxHeadDim));
  }

  // Queries are processed in chunks whose per-split partial results fit the scratch budget.
  const int64_t max_splits =
      (pos0 + n + internal::kAttentionKeysPerSplit - 1) / internal::kAttentionKeysPerSplit;
  const int64_t per_query = shape.n_heads * max_splits * (shape.head_dim + 2);
  constexpr int64_t kMaxChunk = 65535;  // gridDim.z / gridDim.y
  const int64_t budget =
      static_cast<int64_t>(GetKernelTuning().attention_partials_bytes / sizeof(float));
  const int64_t chunk = std::clamp<int64_t>(budget / per_query, 1, std::min(n, kMaxChunk));

  internal::ScratchArena::Scope scratch(internal::Scratch(stream));
  absl::StatusOr<float*> partials = scratch.Allocate<float>(static_cast<size_t>(chunk * per_query));
  if (!partials.ok()) return partials.status();
  const int64_t row = shape.n_heads * shape.head_dim;
  for (int64_t t0 = 0; t0 < n; t0 += chunk) {
    const int64_t count = std::min(chunk, n - t0);
    if (absl::Status s = internal::LaunchStatus(
            internal::LaunchAttention(*args, q + t0 * row, k_cache, v_cache, pos0 + t0, count,
                                      *partials, out + t0 * row, internal::NativeStream(stream)),
            kOp);
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status WriteKvCache(Stream& stream, const AttentionShape& shape, const float* k_new,
                          const float* v_new, int64_t pos0, int64_t n, void* k_cache,
                          void* v_cache) {
  constexpr std::string_view kOp = "WriteKvCache";
  absl::StatusOr<internal::AttentionArgs> args = CheckShape(shape, pos0, n, kOp);
  if (!args.ok()) return args.status();
  if (n == 0) return absl::OkStatus();
  if (absl::Status s = internal::CheckNotNull(k_new, kOp, "k_new"); !s.ok()) return s;
  if (absl::Status s = internal::CheckNotNull(v_new, kOp, "v_new"); !s.ok()) return s;
  if (absl::Status s = internal::CheckNotNull(k_cache, kOp, "k_cache"); !s.ok()) return s;
  if (absl::Status s = internal::CheckNotNull(v_cache, kOp, "v_cache"); !s.ok()) return s;
  return internal::LaunchStatus(internal::LaunchWriteKv(*args, k_new, v_new, pos0, n, k_cache,
                                                        v_cache, internal::NativeStream(stream)),
                                kOp);
}

}  // namespace pinfer::cuda
