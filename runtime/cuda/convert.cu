// Dtype conversions: decoding weight rows to f32 (embeddings, tests), dequantizing row tiles to f16
// for the cuBLAS matrix-matrix path, and rounding activations to f16/bf16 for it.
#include "runtime/cuda/device_common.cuh"
#include "runtime/cuda/launch.h"

namespace pinfer::cuda::internal {
namespace {

__global__ void DecodeRowsKernel(WeightsArg w, const int32_t* row_ids, int64_t first_row,
                                 int64_t count, float* out) {
  const int64_t total = count * w.cols;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = idx / w.cols;
    const int64_t c = idx % w.cols;
    const int64_t row = row_ids != nullptr ? row_ids[i] : first_row + i;
    out[idx] = DecodeElement(w.type, w.data + static_cast<size_t>(row) * w.row_bytes, c);
  }
}

// One thread per quantized block: 32 values written as f16.
template <class Decoder>
__global__ void DequantizeToF16Kernel(const uint8_t* w, size_t row_bytes, int64_t n_chunks,
                                      int64_t first_row, int64_t count, __half* out) {
  const int64_t total = count * n_chunks;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = idx / n_chunks;
    const int64_t ch = idx % n_chunks;
    float values[Decoder::kChunk];
    Decoder::Decode(w + static_cast<size_t>(first_row + i) * row_bytes, ch, values);
    __half* dst = out + idx * Decoder::kChunk;
#pragma unroll
    for (int e = 0; e < Decoder::kChunk; ++e) dst[e] = __float2half_rn(values[e]);
  }
}

__global__ void ConvertF32Kernel(const float* x, int64_t n, bool to_bf16, uint16_t* out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = to_bf16 ? __bfloat16_as_ushort(__float2bfloat16_rn(x[i]))
                     : __half_as_ushort(__float2half_rn(x[i]));
  }
}

}  // namespace

cudaError_t LaunchDecodeRows(const WeightsArg& w, const int32_t* row_ids, int64_t first_row,
                             int64_t count, float* out, cudaStream_t stream) {
  const int64_t total = count * w.cols;
  if (total == 0) return cudaSuccess;
  DecodeRowsKernel<<<ElementwiseBlocks(total), kElementwiseThreads, 0, stream>>>(
      w, row_ids, first_row, count, out);
  return cudaGetLastError();
}

cudaError_t LaunchDequantizeToF16(const WeightsArg& w, int64_t first_row, int64_t count,
                                  uint16_t* out, cudaStream_t stream) {
  const int64_t n_chunks = w.cols / kQuantBlock;
  const int64_t total = count * n_chunks;
  if (total == 0) return cudaSuccess;
  __half* half_out = reinterpret_cast<__half*>(out);
  if (w.type == WeightType::kQ8_0) {
    DequantizeToF16Kernel<Q8_0Decoder>
        <<<ElementwiseBlocks(total), kElementwiseThreads, 0, stream>>>(
            w.data, w.row_bytes, n_chunks, first_row, count, half_out);
  } else if (w.type == WeightType::kQ4_0) {
    DequantizeToF16Kernel<Q4_0Decoder>
        <<<ElementwiseBlocks(total), kElementwiseThreads, 0, stream>>>(
            w.data, w.row_bytes, n_chunks, first_row, count, half_out);
  } else {
    return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

cudaError_t LaunchConvertF32(const float* x, int64_t n, bool to_bf16, uint16_t* out,
                             cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  ConvertF32Kernel<<<ElementwiseBlocks(n), kElementwiseThreads, 0, stream>>>(x, n, to_bf16, out);
  return cudaGetLastError();
}

}  // namespace pinfer::cuda::internal
