// Placeholder dispatch: until the Highway kernels land, the fast entry points run the scalar
// references, parallelised over rows where that is trivially safe.
#include "runtime/cpu/kernels.h"

#include <omp.h>

#include "format/dtype.h"
#include "runtime/cpu/reference_kernels.h"

namespace pinfer::cpu {

MatrixView MakeMatrixView(DType dtype, int64_t rows, int64_t cols, const void* data) {
  MatrixView view;
  view.dtype = dtype;
  view.rows = rows;
  view.cols = cols;
  view.data = static_cast<const uint8_t*>(data);
  view.row_bytes = static_cast<size_t>(RowBytes(dtype, static_cast<uint64_t>(cols)).value_or(0));
  return view;
}

void SetThreads(int threads) { omp_set_num_threads(threads); }
int Threads() { return omp_get_max_threads(); }

void MatVec(const MatrixView& w, const float* x, float* y) { MatMul(w, x, 1, y); }

void MatMul(const MatrixView& w, const float* x, int64_t n, float* y) {
  reference::MatMul(w, x, n, y);
}

void MatVecTransposedAccumulate(const MatrixView& w, const float* a, float* y) {
  reference::MatVecTransposedAccumulate(w, a, y);
}

void MatMulTransposedAccumulate(const MatrixView& w, const float* a, int64_t n, float* y) {
  reference::MatMulTransposedAccumulate(w, a, n, y);
}

void DecodeRows(const MatrixView& w, int64_t row, int64_t count, float* out) {
  reference::DecodeRows(w, row, count, out);
}

void RmsNorm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  reference::RmsNorm(x, weight, n, eps, out);
}

void RopeInterleaved(float* v, int64_t n_heads, int64_t head_dim, int64_t pos, double theta) {
  reference::RopeInterleaved(v, n_heads, head_dim, pos, theta);
}

void Softmax(float* x, int64_t n) { reference::Softmax(x, n); }

void FfnCombine(FfnActivation act, float param, const float* gate, const float* up, int64_t n,
                float* out) {
  reference::FfnCombine(act, param, gate, up, n, out);
}

void ShiftedRelu(float* x, int64_t n, float shift) { reference::ShiftedRelu(x, n, shift); }

void Add(const float* x, int64_t n, float* y) { reference::Add(x, n, y); }

void Attention(const AttentionShape& shape, const float* q, const float* k, const float* v,
               int64_t pos0, int64_t n, float* out) {
  reference::Attention(shape, q, k, v, pos0, n, out);
}

const char* SimdTargetName() { return "scalar"; }

}  // namespace pinfer::cpu
