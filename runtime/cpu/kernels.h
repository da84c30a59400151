// CPU kernels of the dense forward pass. Every function here has a scalar reference in
// reference_kernels.h with the same signature, which the tests compare against; the versions here
// are the fast ones (Highway SIMD, dispatched at run time; OpenMP threads inside).
//
// Conventions:
//   - A weight matrix is [rows, cols] row-major in any model dtype (f32, f16, bf16, q8_0, q4_0,
//     q4_0x16); quantized blocks run along cols.
//   - "x" vectors and "X" batches are f32; a batch is [n, cols] row-major (one token per row).
//   - For q8_0/q4_0/q4_0x16 weights the activations are quantized to q8_0 internally, as llama.cpp
//   does,
//     so results differ from the f32 reference by that rounding (tests use a tolerance).
//   - Kernels split work across the OpenMP threads set by SetThreads(); they may be called from
//     one thread only (not from inside another parallel region).
#pragma once

#include <cstddef>
#include <cstdint>

#include "format/dtype.h"
#include "runtime/cpu/activation_kind.h"
#include "runtime/cpu/rope_frequencies.h"

namespace pinfer::cpu {

struct MatrixView {
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  const uint8_t* data = nullptr;
  size_t row_bytes = 0;  // bytes of one row (RowBytes(dtype, cols))

  const uint8_t* Row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes; }
};

// Builds a view, computing row_bytes. Precondition: cols fits the dtype's block size.
MatrixView MakeMatrixView(DType dtype, int64_t rows, int64_t cols, const void* data);

void SetThreads(int threads);
int Threads();

// y[r] = W[r,:] · x                       for r < rows           (x: cols, y: rows)
void MatVec(const MatrixView& w, const float* x, float* y);
// Y[t,r] = W[r,:] · X[t,:]                for t < n, r < rows    (X: [n, cols], Y: [n, rows])
void MatMul(const MatrixView& w, const float* x, int64_t n, float* y);
// y[c] += Σ_r a[r] · W[r,c]               (a: rows, y: cols) — the FFN down projection over the
// transposed, neuron-major down matrix; rows whose a[r] == 0 contribute nothing.
void MatVecTransposedAccumulate(const MatrixView& w, const float* a, float* y);
// Y[t,c] += Σ_r A[t,r] · W[r,c]           (A: [n, rows], Y: [n, cols])
void MatMulTransposedAccumulate(const MatrixView& w, const float* a, int64_t n, float* y);

// Neuron-sparse products over a list of rows of W (the active neurons of an FFN): the building
// blocks of the sparse CPU FFN and of the CPU half of the hybrid GPU/CPU FFN. `rows` holds `count`
// distinct row indices of W in any order; results follow the order of `rows`. Threads split the
// list by blocks of rows.
// Y[t,j] = W[rows[j],:] · X[t,:]          for t < n, j < count   (X: [n, cols], Y: [n, count])
void GatherMatMul(const MatrixView& w, const int32_t* rows, int64_t count, const float* x,
                  int64_t n, float* y);
// Y[t,c] += Σ_j A[t,j] · W[rows[j],c]     (A: [n, count], Y: [n, cols]) — the down projection of
// the listed neurons over the neuron-major ffn_down_t; entries A[t,j] == 0 contribute nothing.
void GatherMatMulTransposedAccumulate(const MatrixView& w, const int32_t* rows, int64_t count,
                                      const float* a, int64_t n, float* y);

// Decodes rows [row, row + count) of W to f32 (embedding lookups, tests).
void DecodeRows(const MatrixView& w, int64_t row, int64_t count, float* out);

// out = x / sqrt(mean(x²) + eps) · weight  (out may alias x)
void RmsNorm(const float* x, const float* weight, int64_t n, float eps, float* out);
// Rotates interleaved pairs (v[2i], v[2i+1]) of each of `n_heads` heads at position `pos`:
// angle = pos · rope.Frequency(i) (theta^(-2i/head_dim), divided by the model's RoPE scaling
// factor of the pair: rope_frequencies.h). head_dim / 2 <= kMaxRopePairs when rope has factors.
void RopeInterleaved(float* v, int64_t n_heads, int64_t head_dim, int64_t pos,
                     const RopeFrequencies& rope);
// Moves keys that RopeInterleaved rotated to other positions: rotates the interleaved pairs of each
// of `n_heads` heads of `n_rows` rows (`row_stride` floats apart) by `delta` positions. Rotations
// compose, so a key rotated at position p becomes the key rotated at p + delta: the context shift
// of a KV cache (delta < 0) re-rotates the keys it moves down without their unrotated values.
void RopeShift(float* rows, int64_t n_rows, int64_t row_stride, int64_t n_heads, int64_t head_dim,
               int64_t delta, const RopeFrequencies& rope);
// In place, numerically stable.
void Softmax(float* x, int64_t n);
// out[i] = act(gate[i], up[i]) for the FFN activation (see runtime/model/activation.h); the
// activation is passed by kind/param to keep this layer free of the model library.
void FfnCombine(ActivationKind act, float param, const float* gate, const float* up, int64_t n,
                float* out);
// x[i] = max(x[i] - shift, 0)
void ShiftedRelu(float* x, int64_t n, float shift);
// y[i] += x[i]
void Add(const float* x, int64_t n, float* y);

// Causal self-attention for `n` query positions starting at absolute position `pos0`, against a
// KV cache holding positions [0, pos0 + n) (the new ones already written).
//   q:   [n, n_heads, head_dim], f32
//   k,v: cache rows of `kv_type` (f32, f16, or q8_0 blocks of 32 along the row), one per position,
//        RowBytes(kv_type, kv_stride) bytes apart: element (p, h, d) is element h * head_dim + d
//        of row p. For q8_0, kv_stride is a multiple of 32 (a head of fewer than 32 elements
//        shares its block's scale with its neighbours).
//   out: [n, n_heads, head_dim], f32
// Query head h uses KV head h / (n_heads / n_kv_heads) (GQA). Scale 1/sqrt(head_dim). Products
// and sums are f32 whatever the cache holds.
struct AttentionShape {
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t kv_stride = 0;  // elements of one position's row in k and v
};
void Attention(const AttentionShape& shape, DType kv_type, const float* q, const void* k,
               const void* v, int64_t pos0, int64_t n, float* out);
// Encodes `rows` contiguous rows of `cols` f32 values as f32, f16 or q8_0 (cols a multiple of 32)
// into `out`, contiguous: how new keys and values enter a KV cache. Bit-identical to
// pinfer::EncodeRow (round to nearest even; q8_0 as ggml quantizes) for finite values.
void EncodeRows(DType dtype, const float* x, int64_t rows, int64_t cols, void* out);

// Name of the SIMD target chosen at run time ("AVX3", "AVX2", "NEON", "EMU128", ...).
const char* SimdTargetName();

}  // namespace pinfer::cpu
