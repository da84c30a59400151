// The neuron-sparse pieces: ordered compaction of active neurons (the predictor's output, the hot
// slots to compute) and the gate/up dot products of a list of neurons.
#include "runtime/cuda/device_common.cuh"
#include "runtime/cuda/launch.h"
#include "runtime/cuda/row_dots.cuh"

namespace pinfer::cuda::internal {
namespace {

// ---- ordered compaction ----
// One block walks the n flags in tiles of kCompactThreads * kItemsPerThread; thread t owns a run of
// kItemsPerThread consecutive items, so an exclusive scan of the per-thread counts gives every
// flagged item its output position and the list comes out in ascending order (deterministic, and
// the gathered rows are then read in memory order). A single tile covers 16K neurons: one pass for
// every Llama FFN up to 70B's 28672 (two passes).
constexpr int kCompactThreads = 1024;
constexpr int kItemsPerThread = 16;

template <class Flag>
__global__ void __launch_bounds__(kCompactThreads)
    CompactKernel(int64_t n, Flag flag, int32_t* out, int32_t* count) {
  __shared__ int32_t warp_offsets[kCompactThreads / kWarpSize];
  __shared__ int32_t tile_total;
  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  int32_t base = 0;  // items written by earlier tiles (the same in every thread)
  for (int64_t tile = 0; tile < n; tile += int64_t{kCompactThreads} * kItemsPerThread) {
    const int64_t first = tile + int64_t{threadIdx.x} * kItemsPerThread;
    bool flags[kItemsPerThread];
    int32_t mine = 0;
#pragma unroll
    for (int i = 0; i < kItemsPerThread; ++i) {
      flags[i] = first + i < n && flag(first + i);
      mine += flags[i] ? 1 : 0;
    }
    // Inclusive scan of the per-thread counts within the warp, then across warps.
    int32_t inclusive = mine;
#pragma unroll
    for (int offset = 1; offset < kWarpSize; offset *= 2) {
      const int32_t other = __shfl_up_sync(kFullMask, inclusive, offset);
      if (lane >= offset) inclusive += other;
    }
    if (lane == kWarpSize - 1) warp_offsets[warp] = inclusive;
    __syncthreads();
    if (warp == 0) {
      const int32_t warp_count = warp_offsets[lane];
      int32_t warp_inclusive = warp_count;
#pragma unroll
      for (int offset = 1; offset < kWarpSize; offset *= 2) {
        const int32_t other = __shfl_up_sync(kFullMask, warp_inclusive, offset);
        if (lane >= offset) warp_inclusive += other;
      }
      warp_offsets[lane] = warp_inclusive - warp_count;
      if (lane == kWarpSize - 1) tile_total = warp_inclusive;
    }
    __syncthreads();
    int32_t position = base + warp_offsets[warp] + inclusive - mine;
#pragma unroll
    for (int i = 0; i < kItemsPerThread; ++i) {
      if (flags[i]) out[position++] = static_cast<int32_t>(first + i);
    }
    base += tile_total;
    __syncthreads();  // warp_offsets and tile_total are rewritten by the next tile
  }
  if (threadIdx.x == 0) *count = base;
}

// A hot slot is computed when its neuron is predicted active (all of them without a mask).
struct HotSlotFlag {
  const uint8_t* active_mask;
  const int32_t* neuron_ids;
  __device__ bool operator()(int64_t slot) const {
    return active_mask == nullptr || active_mask[neuron_ids[slot]] != 0;
  }
};

// The predictor's decision: sigmoid(logit + bias) >= threshold; also writes the dense mask.
struct PredictedFlag {
  const float* logits;
  const float* bias;
  float threshold;
  uint8_t* mask;
  __device__ bool operator()(int64_t i) const {
    const float z = logits[i] + (bias != nullptr ? bias[i] : 0.0f);
    const bool active = 1.0f / (1.0f + expf(-z)) >= threshold;
    if (mask != nullptr) mask[i] = active ? 1 : 0;
    return active;
  }
};

// ---- gate/up over a list of neurons ----
// One block per listed neuron (grid-stride over the device-side count): both rows share each x
// chunk, then thread 0 applies the activation.
template <class Decoder>
__global__ void __launch_bounds__(kRowDotThreads)
    GateUpKernel(const uint8_t* gate, const uint8_t* up, size_t row_bytes, int64_t n_chunks,
                 const int32_t* slots, const int32_t* count, const float* x, ActivationKind act,
                 float param, float threshold, float* a) {
  __shared__ float scratch[2 * kRowDotThreads / kWarpSize];
  const int64_t n = *count;
  for (int64_t k = blockIdx.x; k < n; k += gridDim.x) {
    const size_t offset = static_cast<size_t>(slots[k]) * row_bytes;
    const uint8_t* rows[2] = {gate + offset, up + offset};
    float dots[2];
    BlockRowDots<Decoder, 2>(rows, n_chunks, x, scratch, dots);
    if (threadIdx.x == 0) a[k] = CombineActivation(act, param, dots[0], dots[1], threshold);
  }
}

}  // namespace

cudaError_t LaunchCompactHotSlots(const uint8_t* active_mask, const int32_t* neuron_ids,
                                  int64_t n_hot, int32_t* slots, int32_t* count,
                                  cudaStream_t stream) {
  CompactKernel<<<1, kCompactThreads, 0, stream>>>(n_hot, HotSlotFlag{active_mask, neuron_ids},
                                                   slots, count);
  return cudaGetLastError();
}

cudaError_t LaunchCompactPredicted(const float* logits, const float* bias, int64_t n,
                                   float threshold, int32_t* ids, int32_t* count, uint8_t* mask,
                                   cudaStream_t stream) {
  CompactKernel<<<1, kCompactThreads, 0, stream>>>(n, PredictedFlag{logits, bias, threshold, mask},
                                                   ids, count);
  return cudaGetLastError();
}

cudaError_t LaunchGateUp(const WeightsArg& gate, const WeightsArg& up, const int32_t* slots,
                         const int32_t* count, int64_t max_count, const float* x,
                         ActivationKind act, float param, float threshold, float* a, int sm_count,
                         cudaStream_t stream) {
  if (max_count == 0) return cudaSuccess;
  // Enough blocks to fill the GPU at any density; blocks past the real count exit at once.
  const int64_t cap = int64_t{sm_count} * 16;
  const unsigned blocks = static_cast<unsigned>(max_count < cap ? max_count : cap);
  // The decoder must suit both matrices: dispatch on the one that fails the vector path, if any.
  const WeightsArg& dispatch_on = UseVectorPath(up, x) ? gate : up;
  return DispatchDecoder(dispatch_on, x, [&](auto decoder) {
    using Decoder = decltype(decoder);
    GateUpKernel<Decoder><<<blocks, kRowDotThreads, 0, stream>>>(
        gate.data, up.data, gate.row_bytes, gate.cols / Decoder::kChunk, slots, count, x, act,
        param, threshold, a);
    return cudaGetLastError();
  });
}

}  // namespace pinfer::cuda::internal
