// y = W x for every weight dtype: the decode-time (n = 1) product, memory-bound.
#include "runtime/cuda/launch.h"
#include "runtime/cuda/row_dots.cuh"

namespace pinfer::cuda::internal {
namespace {

// Rows per block (see row_dots.cuh): 4 for quantized weights, whose x chunks (128 bytes of f32
// per 18 or 34 bytes of weights) would otherwise dominate the L1 traffic; 2 for the others, where
// more blocks matter more. Either way a 4096-row matrix gives 1024+ blocks.
template <class Decoder>
constexpr int kRowsPerBlockFor = Decoder::kChunk >= kQuantBlock ? 4 : 2;

template <class Decoder>
__global__ void __launch_bounds__(kRowDotThreads)
    MatVecKernel(const uint8_t* w, size_t row_bytes, int64_t rows, int64_t n_chunks, const float* x,
                 float* y) {
  constexpr int kRowsPerBlock = kRowsPerBlockFor<Decoder>;
  __shared__ float scratch[kRowsPerBlock * kRowDotThreads / kWarpSize];
  for (int64_t group = blockIdx.x; group * kRowsPerBlock < rows; group += gridDim.x) {
    const int64_t row0 = group * kRowsPerBlock;
    const uint8_t* row_ptrs[kRowsPerBlock];
#pragma unroll
    for (int r = 0; r < kRowsPerBlock; ++r) {
      row_ptrs[r] = row0 + r < rows ? w + static_cast<size_t>(row0 + r) * row_bytes : nullptr;
    }
    float dots[kRowsPerBlock];
    BlockRowDots<Decoder, kRowsPerBlock>(row_ptrs, n_chunks, x, scratch, dots);
    if (threadIdx.x == 0) {
#pragma unroll
      for (int r = 0; r < kRowsPerBlock; ++r) {
        if (row0 + r < rows) y[row0 + r] = dots[r];
      }
    }
  }
}

}  // namespace

cudaError_t LaunchMatVec(const WeightsArg& w, const float* x, float* y, cudaStream_t stream) {
  if (w.rows == 0) return cudaSuccess;
  return DispatchDecoder(w, x, [&](auto decoder) {
    using Decoder = decltype(decoder);
    constexpr int kRowsPerBlock = kRowsPerBlockFor<Decoder>;
    const int64_t groups = (w.rows + kRowsPerBlock - 1) / kRowsPerBlock;
    const unsigned blocks = static_cast<unsigned>(groups < (1 << 30) ? groups : (1 << 30));
    MatVecKernel<Decoder><<<blocks, kRowDotThreads, 0, stream>>>(w.data, w.row_bytes, w.rows,
                                                                 w.cols / Decoder::kChunk, x, y);
    return cudaGetLastError();
  });
}

}  // namespace pinfer::cuda::internal
