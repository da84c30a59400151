// y += Σ_k a[k] · W[row_k, :] — the FFN down projection over the neuron-major ffn_down_t
// [n_ff, dim], dense (row_k = k) or over a list of rows (the sparse FFN).
//
// Layout: a thread block is 8 warps over a tile of 32 column chunks (one chunk per lane: 8 f16,
// 4 f32 or one 32-element quantized block, so a warp reads 512-576 contiguous bytes of a row).
// The 8 warps walk different rows of the block's share of k, each keeping its column sums in
// registers; the block then adds its 8 warps in shared memory and writes one partial vector per
// split. The splits along k (gridDim.y) give the GPU enough loads in flight; a second kernel adds
// the partial vectors into y in a fixed order, so results are deterministic (no float atomics).
#include "runtime/cuda/device_common.cuh"
#include "runtime/cuda/launch.h"
#include "runtime/cuda/row_dots.cuh"

namespace pinfer::cuda::internal {
namespace {

constexpr int kTileChunks = kWarpSize;  // column chunks per block
constexpr int kRowGroups = 8;           // warps per block, each on its own rows

template <class Decoder>
__global__ void __launch_bounds__(kTileChunks* kRowGroups)
    TransposedPartialsKernel(const uint8_t* w, size_t row_bytes, int64_t n_chunks,
                             const int32_t* row_ids, const int32_t* count_ptr, int64_t dense_count,
                             const float* a, float* partials) {
  constexpr int kChunk = Decoder::kChunk;
  // Rows in flight per warp: enough loads outstanding, without spilling registers.
  constexpr int kUnroll = kChunk >= 32 ? 2 : 4;
  constexpr int kPadded = kChunk + 1;  // shared-memory row stride, avoids bank conflicts
  __shared__ float sums[kRowGroups * kTileChunks * kPadded];

  const int lane = threadIdx.x % kWarpSize;
  const int group = threadIdx.x / kWarpSize;
  const int64_t ch = static_cast<int64_t>(blockIdx.x) * kTileChunks + lane;
  const bool chunk_valid = ch < n_chunks;

  const int64_t count = count_ptr != nullptr ? *count_ptr : dense_count;
  const int64_t splits = gridDim.y;
  const int64_t per_split = (count + splits - 1) / splits;
  const int64_t k0 = static_cast<int64_t>(blockIdx.y) * per_split;
  const int64_t k1 = min(count, k0 + per_split);

  float acc[kChunk];
#pragma unroll
  for (int i = 0; i < kChunk; ++i) acc[i] = 0.0f;

  for (int64_t k = k0 + group; k < k1; k += kRowGroups * kUnroll) {
    float scale[kUnroll];
    float values[kUnroll][kChunk];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t kk = k + u * kRowGroups;
      scale[u] = kk < k1 ? __ldg(a + kk) : 0.0f;
      if (scale[u] != 0.0f && chunk_valid) {  // rows with a == 0 contribute nothing: skip reads
        const int64_t row = row_ids != nullptr ? __ldg(row_ids + kk) : kk;
        Decoder::Decode(w + static_cast<size_t>(row) * row_bytes, ch, values[u]);
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (scale[u] == 0.0f || !chunk_valid) continue;
#pragma unroll
      for (int i = 0; i < kChunk; ++i) acc[i] = fmaf(scale[u], values[u][i], acc[i]);
    }
  }

  float* mine = sums + (group * kTileChunks + lane) * kPadded;
#pragma unroll
  for (int i = 0; i < kChunk; ++i) mine[i] = acc[i];
  __syncthreads();

  const int64_t cols = n_chunks * kChunk;
  const int64_t tile_col0 = static_cast<int64_t>(blockIdx.x) * kTileChunks * kChunk;
  float* out = partials + static_cast<int64_t>(blockIdx.y) * cols + tile_col0;
  for (int o = threadIdx.x; o < kTileChunks * kChunk; o += blockDim.x) {
    if (tile_col0 + o >= cols) break;
    const int offset = (o / kChunk) * kPadded + o % kChunk;
    float total = 0.0f;
#pragma unroll
    for (int g = 0; g < kRowGroups; ++g) total += sums[g * kTileChunks * kPadded + offset];
    out[o] = total;
  }
}

__global__ void SumPartialsKernel(const float* partials, int splits, int64_t cols, float* y) {
  for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < cols;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float total = 0.0f;
    for (int s = 0; s < splits; ++s) total += partials[s * cols + c];
    y[c] += total;
  }
}

int ChunkOf(const WeightsArg& w) {
  // The chunk the dispatched decoder uses (UseVectorPath with no activation vector).
  if (!UseVectorPath(w, nullptr)) return 1;
  switch (w.type) {
    case WeightType::kF32:
      return F32x4Decoder::kChunk;
    case WeightType::kF16:
    case WeightType::kBF16:
      return F16x8Decoder::kChunk;
    default:
      return kQuantBlock;
  }
}

}  // namespace

int64_t TransposedColumnTiles(const WeightsArg& w) {
  const int64_t n_chunks = w.cols / ChunkOf(w);
  return (n_chunks + kTileChunks - 1) / kTileChunks;
}

cudaError_t LaunchTransposedPartials(const WeightsArg& w, const int32_t* row_ids,
                                     const int32_t* count_ptr, const float* a, int splits,
                                     float* partials, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(TransposedColumnTiles(w)), static_cast<unsigned>(splits));
  // No activation vector to align: nullptr lets the weights alone pick the decoder.
  return DispatchDecoder(w, nullptr, [&](auto decoder) {
    using Decoder = decltype(decoder);
    TransposedPartialsKernel<Decoder><<<grid, kTileChunks * kRowGroups, 0, stream>>>(
        w.data, w.row_bytes, w.cols / Decoder::kChunk, row_ids, count_ptr, w.rows, a, partials);
    return cudaGetLastError();
  });
}

cudaError_t LaunchSumPartials(const float* partials, int splits, int64_t cols, float* y,
                              cudaStream_t stream) {
  if (cols == 0) return cudaSuccess;
  SumPartialsKernel<<<ElementwiseBlocks(cols), kElementwiseThreads, 0, stream>>>(partials, splits,
                                                                                 cols, y);
  return cudaGetLastError();
}

}  // namespace pinfer::cuda::internal
