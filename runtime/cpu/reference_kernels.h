// Scalar references for every kernel in kernels.h: straightforward loops in f32 (f64 accumulation
// where it keeps the reference above suspicion), single-threaded. They define the semantics; the
// fast kernels are tested against them.
#pragma once

#include "runtime/cpu/kernels.h"

namespace pinfer::cpu::reference {

void MatVec(const MatrixView& w, const float* x, float* y);
void MatMul(const MatrixView& w, const float* x, int64_t n, float* y);
void MatVecTransposedAccumulate(const MatrixView& w, const float* a, float* y);
void MatMulTransposedAccumulate(const MatrixView& w, const float* a, int64_t n, float* y);
void GatherMatMul(const MatrixView& w, const int32_t* rows, int64_t count, const float* x,
                  int64_t n, float* y);
void GatherMatMulTransposedAccumulate(const MatrixView& w, const int32_t* rows, int64_t count,
                                      const float* a, int64_t n, float* y);
void DecodeRows(const MatrixView& w, int64_t row, int64_t count, float* out);
void RmsNorm(const float* x, const float* weight, int64_t n, float eps, float* out);
void RopeInterleaved(float* v, int64_t n_heads, int64_t head_dim, int64_t pos,
                     const RopeFrequencies& rope);
void RopeShift(float* rows, int64_t n_rows, int64_t row_stride, int64_t n_heads, int64_t head_dim,
               int64_t delta, const RopeFrequencies& rope);
void Softmax(float* x, int64_t n);
void FfnCombine(ActivationKind act, float param, const float* gate, const float* up, int64_t n,
                float* out);
void ShiftedRelu(float* x, int64_t n, float shift);
void Add(const float* x, int64_t n, float* y);
void Attention(const AttentionShape& shape, DType kv_type, const float* q, const void* k,
               const void* v, int64_t pos0, int64_t n, float* out);
void EncodeRows(DType dtype, const float* x, int64_t rows, int64_t cols, void* out);

}  // namespace pinfer::cpu::reference
