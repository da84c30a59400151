// The boundary between pinfer_cuda's host code (*.cc, compiled by g++, which validates arguments
// and turns errors into absl::Status) and its kernels (*.cu, compiled by nvcc, which see neither
// Abseil nor the rest of the project). Each Launch* function enqueues its kernel(s) on `stream`
// and returns cudaGetLastError(); it assumes its arguments were checked by the caller.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "runtime/cpu/activation_kind.h"
#include "runtime/cpu/rope_frequencies.h"

namespace pinfer::cuda::internal {

// The weight dtypes the kernels read (the subset of pinfer::DType that holds weights).
enum class WeightType : int { kF32, kF16, kBF16, kQ8_0, kQ4_0 };

// The FFN activations are pinfer::ActivationKind (runtime/cpu/activation_kind.h, shared with the
// model and the CPU kernels).
using ::pinfer::ActivationKind;

// A row-major [rows, cols] weight matrix in device memory; quantized blocks run along cols.
struct WeightsArg {
  WeightType type = WeightType::kF32;
  const uint8_t* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  size_t row_bytes = 0;
};

// Whether the vectorised kernels apply: they read 16 bytes per load (floating weights) or one
// quantized block, and the activations as float4. Otherwise an element-by-element variant runs.
// (Quantized weights always take the block path; their callers require 16-byte aligned x.)
inline bool UseVectorPath(const WeightsArg& w, const void* x) {
  const bool x_aligned = reinterpret_cast<uintptr_t>(x) % 16 == 0;
  switch (w.type) {
    case WeightType::kQ8_0:
    case WeightType::kQ4_0:
      return true;
    case WeightType::kF32:
      return x_aligned && reinterpret_cast<uintptr_t>(w.data) % 16 == 0 && w.row_bytes % 16 == 0 &&
             w.cols % 4 == 0;
    case WeightType::kF16:
    case WeightType::kBF16:
      return x_aligned && reinterpret_cast<uintptr_t>(w.data) % 16 == 0 && w.row_bytes % 16 == 0 &&
             w.cols % 8 == 0;
  }
  return false;
}

// ---- matrix products (matvec.cu, transposed.cu) ----

// y[r] = W[r,:] · x for every row.
cudaError_t LaunchMatVec(const WeightsArg& w, const float* x, float* y, cudaStream_t stream);

// For k < count (count = *count_ptr when given, else w.rows), with row_k = row_ids[k] (or k):
// partials[s, :] = Σ_{k in split s} a[k] · W[row_k, :]   for s < splits (every split is written;
// an empty one with zeros). Rows whose a[k] == 0 are not read.
cudaError_t LaunchTransposedPartials(const WeightsArg& w, const int32_t* row_ids,
                                     const int32_t* count_ptr, const float* a, int splits,
                                     float* partials, cudaStream_t stream);
// y[c] += Σ_s partials[s, c]
cudaError_t LaunchSumPartials(const float* partials, int splits, int64_t cols, float* y,
                              cudaStream_t stream);
// How many column tiles (thread blocks along the columns) the partials kernel uses for `w`.
int64_t TransposedColumnTiles(const WeightsArg& w);

// ---- conversions (convert.cu) ----

// out[i, :] = W[row_ids ? row_ids[i] : first_row + i, :] decoded to f32, for i < count.
cudaError_t LaunchDecodeRows(const WeightsArg& w, const int32_t* row_ids, int64_t first_row,
                             int64_t count, float* out, cudaStream_t stream);
// Rows [first_row, first_row + count) of a quantized W as contiguous f16 [count, cols].
cudaError_t LaunchDequantizeToF16(const WeightsArg& w, int64_t first_row, int64_t count,
                                  uint16_t* out, cudaStream_t stream);
// out[i] = round-to-nearest-even f16 (or bf16) of x[i].
cudaError_t LaunchConvertF32(const float* x, int64_t n, bool to_bf16, uint16_t* out,
                             cudaStream_t stream);

// ---- element-wise and per-row operations (elementwise.cu) ----

cudaError_t LaunchRmsNorm(const float* x, const float* weight, int64_t rows, int64_t n, float eps,
                          float* out, cudaStream_t stream);
// v: [n_tokens, n_heads, head_dim]; token t is at position pos0 + t.
// `rope` travels by value, as a kernel argument (about 1 KiB, within the 4 KiB limit).
cudaError_t LaunchRope(float* v, int64_t n_tokens, int64_t n_heads, int64_t head_dim, int64_t pos0,
                       const RopeFrequencies& rope, cudaStream_t stream);
cudaError_t LaunchSoftmax(float* x, int64_t rows, int64_t n, cudaStream_t stream);
// threshold >= 0: a calibrated model's rule (device_common.cuh CombineActivation); < 0: none.
cudaError_t LaunchFfnCombine(ActivationKind act, float param, float threshold, const float* gate,
                             const float* up, int64_t n, float* out, cudaStream_t stream);
cudaError_t LaunchShiftedRelu(float* x, int64_t n, float shift, cudaStream_t stream);
cudaError_t LaunchAdd(const float* x, int64_t n, float* y, cudaStream_t stream);
// x[i] = x[i] + bias[i] (bias may be null), then max(x, 0) when `relu`.
cudaError_t LaunchBiasActivation(float* x, const float* bias, int64_t n, bool relu,
                                 cudaStream_t stream);

// ---- attention (attention.cu) ----

struct AttentionArgs {
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t kv_stride = 0;  // elements between consecutive positions in the caches
  bool kv_f16 = false;    // caches hold f16 (else f32)
};
// Keys handled by one thread block; a query over L keys uses ceil(L / kAttentionKeysPerSplit)
// blocks whose partial results the combine kernel merges (split-K "flash decoding").
inline constexpr int64_t kAttentionKeysPerSplit = 256;
// Queries [0, n) at positions pos0 + t; `partials` holds n * n_heads * splits * (head_dim + 2)
// floats, with splits = ceil((pos0 + n) / kAttentionKeysPerSplit).
cudaError_t LaunchAttention(const AttentionArgs& args, const float* q, const void* k, const void* v,
                            int64_t pos0, int64_t n, float* partials, float* out,
                            cudaStream_t stream);
// Caches at positions [pos0, pos0 + n) = the new rows k_new, v_new ([n, n_kv_heads * head_dim]).
cudaError_t LaunchWriteKv(const AttentionArgs& args, const float* k_new, const float* v_new,
                          int64_t pos0, int64_t n, void* k_cache, void* v_cache,
                          cudaStream_t stream);

// ---- neuron-sparse FFN and predictor (sparse.cu) ----

// Ascending slots j < n_hot whose neuron is active (active_mask[neuron_ids[j]] != 0; every slot
// when active_mask is null) into slots[0, *count).
cudaError_t LaunchCompactHotSlots(const uint8_t* active_mask, const int32_t* neuron_ids,
                                  int64_t n_hot, int32_t* slots, int32_t* count,
                                  cudaStream_t stream);
// Ascending i < n with sigmoid(logits[i] + bias[i]) >= threshold into ids[0, *count); mask[i] (if
// given) = 1 for those, 0 for the others. bias may be null.
cudaError_t LaunchCompactPredicted(const float* logits, const float* bias, int64_t n,
                                   float threshold, int32_t* ids, int32_t* count, uint8_t* mask,
                                   cudaStream_t stream);
// For k < *count with j = slots[k]: a[k] = act(gate[j,:] · x, up[j,:] · x). `max_count` bounds
// *count (it sizes the grid). gate and up share dtype and shape.
cudaError_t LaunchGateUp(const WeightsArg& gate, const WeightsArg& up, const int32_t* slots,
                         const int32_t* count, int64_t max_count, const float* x,
                         ActivationKind act, float param, float threshold, float* a, int sm_count,
                         cudaStream_t stream);

}  // namespace pinfer::cuda::internal
