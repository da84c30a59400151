// Internal interface between the public kernels (kernels.cc: argument handling, scratch memory,
// OpenMP work split) and the SIMD bodies (*_simd.cc: compiled once per Highway target and
// dispatched at run time). Every function here is single-threaded and works on a slice of the
// problem that kernels.cc hands it; none of them allocates.
#pragma once

#include <cstddef>
#include <cstdint>

#include "runtime/cpu/kernels.h"

namespace pinfer::cpu::simd {

// The rows a kernel visits: either the contiguous range [begin, end), or, when `index` is set,
// the rows index[begin..end). The index form is what neuron-sparse execution passes (the
// predicted-active neurons); dense execution uses ranges.
// Each visited row has a per-row operand (the output of a dot product, the activation scaling it
// in a transposed product). It lives at the row's id, or, when `compact` is set, at the row's
// position in `index` (the Gather* kernels: operands [count] per token, in the order of `index`).
struct RowSet {
  const int32_t* index = nullptr;
  int64_t begin = 0;
  int64_t end = 0;
  bool compact = false;

  int64_t size() const { return end - begin; }
  int64_t Row(int64_t i) const { return index != nullptr ? index[begin + i] : begin + i; }
  // Where the operand of the i-th visited row lives.
  int64_t Slot(int64_t i) const { return compact ? begin + i : Row(i); }
};

// Activations quantized to q8_0 blocks, laid out for SIMD: the int8 values of token t at
// q + t * cols (contiguous, like the f32 input), the scale of block b of token t at
// d[t * (cols / 32) + b]. The scale is the f16-rounded one, so q * d is exactly what ggml's
// dequantize_row_q8_0 yields for the block pinfer::QuantizeRowQ8_0 produces.
// For q4_0x16 weights they also come in that layout's order (format/quant.h): x16 holds token t's
// values at x16 + t * cols, each full group of 16 blocks as 8 vectors of 64 bytes, vector 2g + h
// holding in lane j (4 bytes) elements 16h + 4g .. 16h + 4g + 3 of the group's block j (the
// elements the weights' nibble lane j meets), the tail blocks in natural order; corr[t * (cols /
// 32) + b] = -8 · Σ of block b's values (the q - 8 offset of q4_0, folded into the int32 sum).
struct QuantizedActivations {
  const int8_t* q = nullptr;
  const float* d = nullptr;
  int64_t n = 0;
  int64_t cols = 0;
  const int8_t* x16 = nullptr;
  const int32_t* corr = nullptr;
};

// Quantizes tokens [t0, t1) of x ([n, cols], cols a multiple of 32) into q/d (the layout above).
// Bit-identical to pinfer::QuantizeRowQ8_0 (round half away from zero).
void QuantizeActivations(const float* x, int64_t cols, int64_t t0, int64_t t1, int8_t* q, float* d);
// The q4_0x16 order and corrections (above) of tokens [t0, t1) of quantized values q ([n, cols]).
void InterleaveActivationsQ4x16(const int8_t* q, int64_t cols, int64_t t0, int64_t t1, int8_t* x16,
                                int32_t* corr);

// y[t * y_stride + slot(r)] = W[r,:] · X[t,:] for every row r of `rows` and token t < n.
// Float weights (f32, f16, bf16) against f32 activations.
void DotRowsFloat(const MatrixView& w, RowSet rows, const float* x, int64_t n, float* y,
                  int64_t y_stride);
// Quantized weights (q8_0, q4_0) against q8_0 activations, with integer block dot products.
void DotRowsQuant(const MatrixView& w, RowSet rows, const QuantizedActivations& x, float* y,
                  int64_t y_stride);
// q4_0x16 weights (dot_q4x16_simd.cc); x carries x16 and corr.
void DotRowsQ4x16(const MatrixView& w, RowSet rows, const QuantizedActivations& x, float* y,
                  int64_t y_stride);

// Y[t, c] += Σ_{r in rows} A[t, slot(r)] · W[r, c] for columns c in [c0, c1) and tokens t < n
// (A: [n, a_stride], Y: [n, y_stride]). For quantized weights c0 and c1 are multiples of 32.
// A row whose activations are all zero (for the tokens processed together) is skipped.
void AccumulateRowsTransposed(const MatrixView& w, RowSet rows, const float* a, int64_t a_stride,
                              int64_t n, int64_t c0, int64_t c1, float* y, int64_t y_stride);

// Decodes rows [row, row + count) of any floating or quantized dtype to f32.
void DecodeRows(const MatrixView& w, int64_t row, int64_t count, float* out);

void RmsNorm(const float* x, const float* weight, int64_t n, float eps, float* out);
void RopeInterleaved(float* v, int64_t n_heads, int64_t head_dim, int64_t pos,
                     const RopeFrequencies& rope);
// Rotates every interleaved pair of the `n_heads` heads of `n_rows` rows (`row_stride` floats
// apart) by the angle of its index: cosines = (c0, c0, c1, c1, ...), sines = (-s0, s0, -s1, s1,
// ...), head_dim floats each (cpu::RopeShift builds them).
void RopeShiftRows(float* rows, int64_t n_rows, int64_t row_stride, int64_t n_heads,
                   int64_t head_dim, const float* cosines, const float* sines);
void Softmax(float* x, int64_t n);
void FfnCombine(ActivationKind act, float param, const float* gate, const float* up, int64_t n,
                float* out);
void ShiftedRelu(float* x, int64_t n, float shift);
void Add(const float* x, int64_t n, float* y);

// Causal attention of one token: the query heads of KV heads [kv0, kv1) (q and out: that
// token's [n_heads, head_dim] rows; the range's heads are the consecutive query heads
// kv0·group .. kv1·group) against the first n_keys cache positions of k and v (rows of kv_type,
// laid out as in cpu::Attention). `scratch` holds at least AttentionScratchFloats(shape, n_keys)
// floats.
void AttentionRange(const AttentionShape& shape, DType kv_type, const float* q, const void* k,
                    const void* v, int64_t kv0, int64_t kv1, int64_t n_keys, float* out,
                    float* scratch);
int64_t AttentionScratchFloats(const AttentionShape& shape, int64_t n_keys);

// `rows` contiguous rows of `cols` f32 values encoded as f32, f16 or q8_0 (cols a multiple of 32),
// contiguous in `out`: bit-identical to pinfer::EncodeRow (format/quant.h) for finite values.
void EncodeRows(DType dtype, const float* x, int64_t rows, int64_t cols, void* out);

// The Highway target the dispatcher picks for these kernels ("AVX3_DL", "AVX2", "NEON", ...).
const char* ChosenTargetName();

}  // namespace pinfer::cpu::simd
