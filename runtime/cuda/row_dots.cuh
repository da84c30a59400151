// The core of every "rows times a vector" kernel (mat-vec, the sparse FFN's gate/up, the
// predictor): one thread block computes the dot products of R weight rows with the same activation
// vector.
//
// Why a block per row group rather than a warp per row: decode mat-vecs have few rows (4096) and
// are memory-bound, so the GPU needs many loads in flight; a 128-thread block per 2 rows (4 for
// quantized weights) gives 1024-2048 blocks for a 4096-row matrix, enough to fill every SM. Reading R rows per block loads each
// chunk of x once for R rows, which matters for q4_0 where x (4 bytes per element) would
// otherwise be read 7 times more than the weights (0.56 bytes per element), from L1/L2.
#pragma once

#include "runtime/cuda/device_common.cuh"

namespace pinfer::cuda::internal {

inline constexpr int kRowDotThreads = 128;

// dots[r] = row[r] · x over n_chunks chunks of Decoder::kChunk elements; rows[r] == nullptr
// skips that row (dots[r] = 0). The result is valid in thread 0. `scratch` holds R * 32 floats.
// Every thread of the block must call it (it synchronises).
template <class Decoder, int R>
__device__ __forceinline__ void BlockRowDots(const uint8_t* const* rows, int64_t n_chunks,
                                             const float* x, float* scratch, float* dots) {
  constexpr int kChunk = Decoder::kChunk;
  float acc[R];
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r] = 0.0f;

  for (int64_t ch = threadIdx.x; ch < n_chunks; ch += kRowDotThreads) {
    float xv[kChunk];
    LoadActivations<kChunk>(x, ch, xv);
#pragma unroll
    for (int r = 0; r < R; ++r) {
      if (rows[r] == nullptr) continue;
      float w[kChunk];
      Decoder::Decode(rows[r], ch, w);
#pragma unroll
      for (int i = 0; i < kChunk; ++i) acc[r] = fmaf(w[i], xv[i], acc[r]);
    }
  }

  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  constexpr int kWarps = kRowDotThreads / kWarpSize;
  __syncthreads();  // a previous call's thread 0 has finished reading scratch
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const float sum = WarpSum(acc[r]);
    if (lane == 0) scratch[r * kWarps + warp] = sum;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
      float total = 0.0f;
#pragma unroll
      for (int w = 0; w < kWarps; ++w) total += scratch[r * kWarps + w];
      dots[r] = total;
    }
  }
}

// Calls `body(decoder_tag)` with the decoder type that fits `w` and `x` (see UseVectorPath), so
// that a launcher instantiates its kernel once per decoder.
template <class Body>
cudaError_t DispatchDecoder(const WeightsArg& w, const void* x, Body&& body) {
  const bool vector = UseVectorPath(w, x);
  switch (w.type) {
    case WeightType::kF32:
      return vector ? body(F32x4Decoder{}) : body(ScalarDecoder<WeightType::kF32>{});
    case WeightType::kF16:
      return vector ? body(F16x8Decoder{}) : body(ScalarDecoder<WeightType::kF16>{});
    case WeightType::kBF16:
      return vector ? body(BF16x8Decoder{}) : body(ScalarDecoder<WeightType::kBF16>{});
    case WeightType::kQ8_0:
      return body(Q8_0Decoder{});
    case WeightType::kQ4_0:
      return body(Q4_0Decoder{});
  }
  return cudaErrorInvalidValue;
}

}  // namespace pinfer::cuda::internal
