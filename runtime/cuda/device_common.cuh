// Device-side building blocks shared by the kernels: weight decoders, reductions, activations.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "runtime/cuda/launch.h"

namespace pinfer::cuda::internal {

inline constexpr int kWarpSize = 32;
inline constexpr unsigned kFullMask = 0xffffffffu;
inline constexpr int kQuantBlock = 32;      // elements of a q8_0 / q4_0 block
inline constexpr int kQ8_0BlockBytes = 34;  // f16 scale + 32 x int8
inline constexpr int kQ4_0BlockBytes = 18;  // f16 scale + 16 bytes of nibbles

__device__ __forceinline__ float HalfBitsToFloat(uint16_t bits) {
  return __half2float(__ushort_as_half(bits));
}
__device__ __forceinline__ float Bf16BitsToFloat(uint16_t bits) {
  return __uint_as_float(static_cast<uint32_t>(bits) << 16);
}
__device__ __forceinline__ int8_t LowByteAsInt8(uint32_t v) {
  return static_cast<int8_t>(static_cast<uint8_t>(v & 0xffu));
}

// ---- weight decoders ----
// A decoder turns chunk `ch` of a row (elements [ch * kChunk, (ch + 1) * kChunk)) into floats.
// The vector decoders need the alignment UseVectorPath() checks; ScalarDecoder reads anything.

struct F32x4Decoder {
  static constexpr int kChunk = 4;
  __device__ __forceinline__ static void Decode(const uint8_t* row, int64_t ch, float* out) {
    const float4 v = __ldg(reinterpret_cast<const float4*>(row) + ch);
    out[0] = v.x;
    out[1] = v.y;
    out[2] = v.z;
    out[3] = v.w;
  }
};

// Eight 16-bit floats from one 16-byte load; element 2i is the low half of word i (little-endian).
template <bool kBf16>
struct Half8Decoder {
  static constexpr int kChunk = 8;
  __device__ __forceinline__ static void Decode(const uint8_t* row, int64_t ch, float* out) {
    const uint4 v = __ldg(reinterpret_cast<const uint4*>(row) + ch);
    const uint32_t words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint16_t lo = static_cast<uint16_t>(words[i] & 0xffffu);
      const uint16_t hi = static_cast<uint16_t>(words[i] >> 16);
      out[2 * i] = kBf16 ? Bf16BitsToFloat(lo) : HalfBitsToFloat(lo);
      out[2 * i + 1] = kBf16 ? Bf16BitsToFloat(hi) : HalfBitsToFloat(hi);
    }
  }
};
using F16x8Decoder = Half8Decoder<false>;
using BF16x8Decoder = Half8Decoder<true>;

// One q8_0 block (x = d * q). Blocks are 34 bytes, so only 2-byte alignment is guaranteed: the
// block is read as 17 16-bit words.
struct Q8_0Decoder {
  static constexpr int kChunk = kQuantBlock;
  __device__ __forceinline__ static void Decode(const uint8_t* row, int64_t ch, float* out) {
    const uint16_t* block = reinterpret_cast<const uint16_t*>(row + ch * kQ8_0BlockBytes);
    const float d = HalfBitsToFloat(__ldg(block));
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const uint32_t pair = __ldg(block + 1 + i);  // qs[2i] (low byte), qs[2i + 1]
      out[2 * i] = d * static_cast<float>(LowByteAsInt8(pair));
      out[2 * i + 1] = d * static_cast<float>(LowByteAsInt8(pair >> 8));
    }
  }
};

// One q4_0 block (x = d * (q - 8)); byte j holds element j (low nibble) and j + 16 (high nibble).
struct Q4_0Decoder {
  static constexpr int kChunk = kQuantBlock;
  __device__ __forceinline__ static void Decode(const uint8_t* row, int64_t ch, float* out) {
    const uint16_t* block = reinterpret_cast<const uint16_t*>(row + ch * kQ4_0BlockBytes);
    const float d = HalfBitsToFloat(__ldg(block));
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const uint32_t pair = __ldg(block + 1 + i);  // bytes 2i (low) and 2i + 1
#pragma unroll
      for (int b = 0; b < 2; ++b) {
        const uint32_t byte = (pair >> (8 * b)) & 0xffu;
        out[2 * i + b] = d * static_cast<float>(static_cast<int>(byte & 0xfu) - 8);
        out[2 * i + b + 16] = d * static_cast<float>(static_cast<int>(byte >> 4) - 8);
      }
    }
  }
};

// Element `c` of a row of any weight type: the slow, obviously-correct path.
__device__ __forceinline__ float DecodeElement(WeightType type, const uint8_t* row, int64_t c) {
  switch (type) {
    case WeightType::kF32:
      return __ldg(reinterpret_cast<const float*>(row) + c);
    case WeightType::kF16:
      return HalfBitsToFloat(__ldg(reinterpret_cast<const uint16_t*>(row) + c));
    case WeightType::kBF16:
      return Bf16BitsToFloat(__ldg(reinterpret_cast<const uint16_t*>(row) + c));
    case WeightType::kQ8_0: {
      const uint8_t* block = row + (c / kQuantBlock) * kQ8_0BlockBytes;
      const float d = HalfBitsToFloat(__ldg(reinterpret_cast<const uint16_t*>(block)));
      const int8_t q = static_cast<int8_t>(__ldg(block + 2 + c % kQuantBlock));
      return d * static_cast<float>(q);
    }
    case WeightType::kQ4_0: {
      const uint8_t* block = row + (c / kQuantBlock) * kQ4_0BlockBytes;
      const float d = HalfBitsToFloat(__ldg(reinterpret_cast<const uint16_t*>(block)));
      const int j = static_cast<int>(c % kQuantBlock);
      const uint8_t byte = __ldg(block + 2 + (j & 15));
      const int q = j < 16 ? (byte & 0xf) : (byte >> 4);
      return d * static_cast<float>(q - 8);
    }
  }
  return 0.0f;
}

// Element by element, for floating weights whose rows or activations are not 16-byte aligned.
template <WeightType kType>
struct ScalarDecoder {
  static constexpr int kChunk = 1;
  __device__ __forceinline__ static void Decode(const uint8_t* row, int64_t ch, float* out) {
    out[0] = DecodeElement(kType, row, ch);
  }
};

// kChunk activations starting at x[ch * kChunk]; float4 loads when kChunk allows (x is then
// 16-byte aligned, see UseVectorPath).
template <int kChunk>
__device__ __forceinline__ void LoadActivations(const float* x, int64_t ch, float* out) {
  if constexpr (kChunk % 4 == 0) {
    const float4* p = reinterpret_cast<const float4*>(x + ch * kChunk);
#pragma unroll
    for (int i = 0; i < kChunk / 4; ++i) {
      const float4 v = __ldg(p + i);
      out[4 * i] = v.x;
      out[4 * i + 1] = v.y;
      out[4 * i + 2] = v.z;
      out[4 * i + 3] = v.w;
    }
  } else {
#pragma unroll
    for (int i = 0; i < kChunk; ++i) out[i] = __ldg(x + ch * kChunk + i);
  }
}

// ---- reductions ----

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
    v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

__device__ __forceinline__ float WarpMax(float v) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
  }
  return v;
}

// Sum (or max) over the whole block, returned to every thread. `scratch` holds 32 floats; all
// threads of the block must call it (it synchronises), and it may be reused right after.
template <bool kMax>
__device__ __forceinline__ float BlockReduce(float v, float* scratch) {
  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  const int warps = (blockDim.x + kWarpSize - 1) / kWarpSize;
  v = kMax ? WarpMax(v) : WarpSum(v);
  __syncthreads();  // earlier readers of scratch are done
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = kMax ? -INFINITY : 0.0f;
  for (int w = 0; w < warps; ++w) total = kMax ? fmaxf(total, scratch[w]) : total + scratch[w];
  return total;
}
__device__ __forceinline__ float BlockSum(float v, float* scratch) {
  return BlockReduce<false>(v, scratch);
}
__device__ __forceinline__ float BlockMax(float v, float* scratch) {
  return BlockReduce<true>(v, scratch);
}

// ---- activations (runtime/model/activation.h; scalar reference in runtime/cpu) ----

// With `threshold` >= 0 (a calibrated silu/gelu model) the neuron fires only when
// |act(g)| > threshold, and gives exactly 0 otherwise (runtime/model/firing_thresholds.h).
__device__ __forceinline__ float CombineActivation(ActivationKind act, float param, float g,
                                                   float u, float threshold) {
  if (threshold >= 0.0f && !(fabsf(ActivationGate(act, param, g)) > threshold)) return 0.0f;
  return ActivationCombine(act, param, g, u);
}

// Threads and blocks for a simple element-wise kernel over n items (grid-stride loops cover the
// rest when the grid is capped).
inline constexpr int kElementwiseThreads = 256;
inline unsigned ElementwiseBlocks(int64_t n) {
  const int64_t blocks = (n + kElementwiseThreads - 1) / kElementwiseThreads;
  constexpr int64_t kMaxBlocks = 65535;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > kMaxBlocks ? kMaxBlocks : blocks));
}

}  // namespace pinfer::cuda::internal
