// pinfer_cuda's dense operations on device memory, the GPU counterparts of runtime/cpu/kernels.h
// (same semantics; the scalar references in runtime/cpu/reference_kernels.h define them and the
// tests in tests/cuda compare against them). No CUDA types: callers pass device pointers.
//
// Every function enqueues its work on `stream` and returns without waiting; the returned status
// covers argument checks and launch errors, execution errors surface at Stream::Synchronize().
// Pointers are device pointers unless said otherwise; activations are f32, a batch is [n, cols]
// row-major. Weights are row-major [rows, cols] in f32, f16, bf16, q8_0 or q4_0, quantized blocks
// running along cols, exactly as in a .pi file (format/README.md), so a mapped tensor can be
// copied to the GPU as it is.
//
// Precision: products accumulate in f32. MatMul/MatMulTransposedAccumulate with n above
// KernelTuning::max_matvec_batch run on cuBLAS tensor cores with the activations rounded to f16
// (bf16 for bf16 weights) and quantized weights dequantized to f16; the mat-vec paths keep the
// activations in f32.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "format/dtype.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cuda/stream.h"

namespace pinfer::cuda {

// A weight matrix in device memory.
struct DeviceMatrix {
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  const void* data = nullptr;
  size_t row_bytes = 0;  // RowBytes(dtype, cols)
};
// Computes row_bytes (0 when cols does not fit the dtype's blocks; the kernels then reject it).
DeviceMatrix MakeDeviceMatrix(DType dtype, int64_t rows, int64_t cols, const void* device_data);
// Rows [first, first + count) as a matrix of their own. Precondition: they are rows of m.
DeviceMatrix SliceRows(const DeviceMatrix& m, int64_t first, int64_t count);

// y[r] = W[r,:] · x                  (x: cols, y: rows). For q8_0/q4_0, x must be 16-byte aligned.
absl::Status MatVec(Stream& stream, const DeviceMatrix& w, const float* x, float* y);
// Y[t,r] = W[r,:] · X[t,:]           (X: [n, cols], Y: [n, rows])
absl::Status MatMul(Stream& stream, const DeviceMatrix& w, const float* x, int64_t n, float* y);
// y[c] += Σ_r a[r] · W[r,c]          (a: rows, y: cols) — the down projection over the
// neuron-major ffn_down_t; rows with a[r] == 0 are not read.
absl::Status MatVecTransposedAccumulate(Stream& stream, const DeviceMatrix& w, const float* a,
                                        float* y);
// Y[t,c] += Σ_r A[t,r] · W[r,c]      (A: [n, rows], Y: [n, cols])
absl::Status MatMulTransposedAccumulate(Stream& stream, const DeviceMatrix& w, const float* a,
                                        int64_t n, float* y);
// The sparse form: y[c] += Σ_{k < *count} a[k] · W[rows[k], c]. `count` is a device pointer, so a
// list produced on the GPU (a predictor's output) is used without a round trip to the host;
// max_count bounds it (it sizes the launch and the scratch memory) and every rows[k] < w.rows.
absl::Status SparseTransposedAccumulate(Stream& stream, const DeviceMatrix& w, const int32_t* rows,
                                        const int32_t* count, int64_t max_count, const float* a,
                                        float* y);

// Rows [row, row + count) of W decoded to f32 (out: [count, cols]).
absl::Status DecodeRows(Stream& stream, const DeviceMatrix& w, int64_t row, int64_t count,
                        float* out);
// out[i,:] = W[row_ids[i],:] decoded to f32, for i < count (embedding lookup; row_ids on device).
absl::Status GatherRows(Stream& stream, const DeviceMatrix& w, const int32_t* row_ids,
                        int64_t count, float* out);

// RmsNorm, RopeInterleaved, ShiftedRelu and Add are not called by the runtime yet (the executor
// runs norms, RoPE and the residual adds on the CPU): they are for the plan's attention on the GPU
// (a layer's attention weights, norms, RoPE and f16 KV cache on the device, attention.h), and
// only tests and benches call them until then.

// For each of `rows` rows of n: out = x / sqrt(mean(x²) + eps) · weight  (out may alias x).
absl::Status RmsNorm(Stream& stream, const float* x, const float* weight, int64_t rows, int64_t n,
                     float eps, float* out);
// v: [n_tokens, n_heads, head_dim]; rotates the interleaved pairs (v[2i], v[2i+1]) of token t by
// (pos0 + t) · rope.Frequency(i) (theta^(-2i/head_dim) over the pair's scaling factor:
// runtime/cpu/rope_frequencies.h). head_dim must be even.
absl::Status RopeInterleaved(Stream& stream, float* v, int64_t n_tokens, int64_t n_heads,
                             int64_t head_dim, int64_t pos0, const RopeFrequencies& rope);
// Each of `rows` rows of n, in place, numerically stable.
absl::Status Softmax(Stream& stream, float* x, int64_t rows, int64_t n);
// out[i] = act(gate[i], up[i]) (runtime/model/activation.h); with threshold >= 0 (a calibrated
// model), 0 unless |act(gate[i])| > threshold (runtime/model/firing_thresholds.h).
absl::Status FfnCombine(Stream& stream, ActivationKind act, float param, const float* gate,
                        const float* up, int64_t n, float* out, float threshold = -1.0f);
// x[i] = max(x[i] - shift, 0): the norm's shifted ReLU.
absl::Status ShiftedRelu(Stream& stream, float* x, int64_t n, float shift);
// y[i] += x[i]
absl::Status Add(Stream& stream, const float* x, int64_t n, float* y);

}  // namespace pinfer::cuda
