// Per-row and element-wise operations: RMSNorm, RoPE, softmax, the FFN activations, additions.
// They move a few KB per token, so they are written for clarity; one block per row where a row
// needs a reduction.
#include "runtime/cuda/device_common.cuh"
#include "runtime/cuda/launch.h"

namespace pinfer::cuda::internal {
namespace {

constexpr int kRowThreads = 256;

__global__ void __launch_bounds__(kRowThreads)
    RmsNormKernel(const float* x, const float* weight, int64_t n, float eps, float* out) {
  __shared__ float scratch[kWarpSize];
  const float* row = x + blockIdx.x * n;
  float* out_row = out + blockIdx.x * n;
  float sum_sq = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) sum_sq = fmaf(row[i], row[i], sum_sq);
  sum_sq = BlockSum(sum_sq, scratch);
  const float scale = rsqrtf(sum_sq / static_cast<float>(n) + eps);
  // out may alias x: each element is read and then written by the same thread.
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) out_row[i] = row[i] * scale * weight[i];
}

__global__ void RopeKernel(float* v, int64_t n_tokens, int64_t n_heads, int64_t head_dim,
                           int64_t pos0, const RopeFrequencies rope) {
  const int64_t pairs_per_head = head_dim / 2;
  const int64_t total = n_tokens * n_heads * pairs_per_head;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t pair = idx % pairs_per_head;
    const int64_t token = idx / (pairs_per_head * n_heads);
    const int64_t i = 2 * pair;
    // In double, as the reference: at positions in the thousands a float angle loses 1e-4 rad.
    const double angle = static_cast<double>(pos0 + token) * rope.Frequency(pair, head_dim);
    double s, c;
    sincos(angle, &s, &c);
    float* p = v + (idx / pairs_per_head) * head_dim + i;
    const double x0 = p[0], x1 = p[1];
    p[0] = static_cast<float>(x0 * c - x1 * s);
    p[1] = static_cast<float>(x0 * s + x1 * c);
  }
}

__global__ void __launch_bounds__(kRowThreads) SoftmaxKernel(float* x, int64_t n) {
  __shared__ float scratch[kWarpSize];
  float* row = x + blockIdx.x * n;
  float max = -INFINITY;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) max = fmaxf(max, row[i]);
  max = BlockMax(max, scratch);
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float e = expf(row[i] - max);
    row[i] = e;
    sum += e;
  }
  sum = BlockSum(sum, scratch);
  const float inverse = 1.0f / sum;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) row[i] *= inverse;
}

__global__ void FfnCombineKernel(ActivationKind act, float param, float threshold,
                                 const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = CombineActivation(act, param, gate[i], up[i], threshold);
  }
}

__global__ void ShiftedReluKernel(float* x, int64_t n, float shift) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    x[i] = x[i] > shift ? x[i] - shift : 0.0f;
  }
}

__global__ void AddKernel(const float* x, int64_t n, float* y) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    y[i] += x[i];
  }
}

__global__ void BiasActivationKernel(float* x, const float* bias, int64_t n, bool relu) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v = x[i] + (bias != nullptr ? bias[i] : 0.0f);
    if (relu) v = fmaxf(v, 0.0f);
    x[i] = v;
  }
}

}  // namespace

cudaError_t LaunchRmsNorm(const float* x, const float* weight, int64_t rows, int64_t n, float eps,
                          float* out, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  RmsNormKernel<<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(x, weight, n, eps, out);
  return cudaGetLastError();
}

cudaError_t LaunchRope(float* v, int64_t n_tokens, int64_t n_heads, int64_t head_dim, int64_t pos0,
                       const RopeFrequencies& rope, cudaStream_t stream) {
  const int64_t pairs = n_tokens * n_heads * (head_dim / 2);
  if (pairs == 0) return cudaSuccess;
  RopeKernel<<<ElementwiseBlocks(pairs), kElementwiseThreads, 0, stream>>>(v, n_tokens, n_heads,
                                                                           head_dim, pos0, rope);
  return cudaGetLastError();
}

cudaError_t LaunchSoftmax(float* x, int64_t rows, int64_t n, cudaStream_t stream) {
  if (rows == 0 || n == 0) return cudaSuccess;
  SoftmaxKernel<<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(x, n);
  return cudaGetLastError();
}

cudaError_t LaunchFfnCombine(ActivationKind act, float param, float threshold, const float* gate,
                             const float* up, int64_t n, float* out, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  FfnCombineKernel<<<ElementwiseBlocks(n), kElementwiseThreads, 0, stream>>>(act, param, threshold,
                                                                             gate, up, n, out);
  return cudaGetLastError();
}

cudaError_t LaunchShiftedRelu(float* x, int64_t n, float shift, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  ShiftedReluKernel<<<ElementwiseBlocks(n), kElementwiseThreads, 0, stream>>>(x, n, shift);
  return cudaGetLastError();
}

cudaError_t LaunchAdd(const float* x, int64_t n, float* y, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  AddKernel<<<ElementwiseBlocks(n), kElementwiseThreads, 0, stream>>>(x, n, y);
  return cudaGetLastError();
}

cudaError_t LaunchBiasActivation(float* x, const float* bias, int64_t n, bool relu,
                                 cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  BiasActivationKernel<<<ElementwiseBlocks(n), kElementwiseThreads, 0, stream>>>(x, bias, n, relu);
  return cudaGetLastError();
}

}  // namespace pinfer::cuda::internal
