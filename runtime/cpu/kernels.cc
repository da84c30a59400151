// Public entry points of the CPU kernels: argument routing by dtype, scratch memory, and the
// OpenMP work split. The SIMD bodies (simd_kernels.h) are single-threaded and work on the slices
// handed out here.
//
// Work split, chosen by measurement (bench/kernels):
//   - dot products (MatVec/MatMul): rows are split into one contiguous range per thread; every
//     thread reads the (shared, small) activations.
//   - transposed products: decode (one token) splits the rows into one block per thread, each
//     streaming whole, contiguous rows into a private partial output that is summed at the end;
//     prompts split the output columns, so every thread owns its outputs and reads its part of
//     every row, with no partial sums or reduction.
//   - attention: decode splits the KV heads into one contiguous range per thread; prompts hand out
//     whole tokens round robin (later tokens attend to more keys).
//   - the Gather* products (neuron-sparse FFN) run the same SIMD bodies over a list of rows
//     (simd::RowSet with an index, operands compact in list order), split the same way: blocks of
//     the list per thread for dot products and for decode's transposed product, output columns
//     for prompts.
// Problems too small to pay for waking the threads run on the calling thread.
#include "runtime/cpu/kernels.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "format/dtype.h"
#include "runtime/cpu/simd_kernels.h"

namespace pinfer::cpu {
namespace {

// Below this many multiply-adds a product runs on one thread (a parallel region costs a few µs).
constexpr int64_t kMinParallelWork = int64_t{1} << 16;

bool IsQuantized(DType dtype) {
  return dtype == DType::kQ8_0 || dtype == DType::kQ4_0 || dtype == DType::kQ4_0x16;
}

int ThreadsFor(int64_t work) { return work < kMinParallelWork ? 1 : std::max(1, Threads()); }

// [begin, end) of part `index` of `parts` near-equal parts of [0, total), boundaries rounded to
// multiples of `align` (the last part takes the remainder).
struct Range {
  int64_t begin, end;
  int64_t size() const { return end - begin; }
};
Range SplitRange(int64_t total, int64_t parts, int64_t index, int64_t align) {
  const int64_t units = (total + align - 1) / align;
  const int64_t begin = std::min(total, units * index / parts * align);
  const int64_t end =
      index + 1 == parts ? total : std::min(total, units * (index + 1) / parts * align);
  return {begin, end};
}

// Activations quantized once per call, kept across calls to avoid reallocating.
struct QuantScratch {
  std::vector<int8_t> q;
  std::vector<float> d;
  std::vector<int8_t> x16;  // q4_0x16 weights only
  std::vector<int32_t> corr;
};

// `x16`: also lay the values out for q4_0x16 weights (simd::QuantizedActivations).
simd::QuantizedActivations QuantizeForWeights(const float* x, int64_t n, int64_t cols, int threads,
                                              bool x16) {
  thread_local QuantScratch scratch;
  const int64_t blocks = cols / 32;
  if (scratch.q.size() < static_cast<size_t>(n * cols)) scratch.q.resize(n * cols);
  if (scratch.d.size() < static_cast<size_t>(n * blocks)) scratch.d.resize(n * blocks);
  if (x16 && scratch.x16.size() < static_cast<size_t>(n * cols)) scratch.x16.resize(n * cols);
  if (x16 && scratch.corr.size() < static_cast<size_t>(n * blocks)) scratch.corr.resize(n * blocks);
  int8_t* q = scratch.q.data();
  float* d = scratch.d.data();
  int8_t* xq16 = x16 ? scratch.x16.data() : nullptr;
  int32_t* corr = x16 ? scratch.corr.data() : nullptr;
  auto run = [&](int64_t t0, int64_t t1) {
    simd::QuantizeActivations(x, cols, t0, t1, q, d);
    if (x16) simd::InterleaveActivationsQ4x16(q, cols, t0, t1, xq16, corr);
  };
  const int parts = static_cast<int>(std::min<int64_t>(threads, n));
  if (parts <= 1) {
    run(0, n);
  } else {
#pragma omp parallel num_threads(parts)
    {
      const Range tokens = SplitRange(n, parts, omp_get_thread_num(), 1);
      run(tokens.begin, tokens.end);
    }
  }
  return {q, d, n, cols, xq16, corr};
}

}  // namespace

MatrixView MakeMatrixView(DType dtype, int64_t rows, int64_t cols, const void* data) {
  MatrixView view;
  view.dtype = dtype;
  view.rows = rows;
  view.cols = cols;
  view.data = static_cast<const uint8_t*>(data);
  view.row_bytes = static_cast<size_t>(RowBytes(dtype, static_cast<uint64_t>(cols)).value_or(0));
  return view;
}

void SetThreads(int threads) { omp_set_num_threads(std::max(1, threads)); }
int Threads() { return omp_get_max_threads(); }

void MatVec(const MatrixView& w, const float* x, float* y) { MatMul(w, x, 1, y); }

namespace {

// Y[t, slot(i)] = W[row(i), :] · X[t, :] for the `count` rows of `index` (null: rows 0..count) —
// MatMul and GatherMatMul. Threads take contiguous blocks of the row list.
void DotRows(const MatrixView& w, const int32_t* index, int64_t count, bool compact, const float* x,
             int64_t n, float* y, int64_t y_stride) {
  if (n <= 0 || count <= 0) return;
  const int threads = ThreadsFor(count * w.cols * n);
  // Rows per thread in multiples of the row tile, so that no tile straddles two threads.
  constexpr int64_t kRowAlign = 4;
  const int parts =
      static_cast<int>(std::min<int64_t>(threads, (count + kRowAlign - 1) / kRowAlign));
  auto rows_of = [&](int part) {
    const Range r = SplitRange(count, parts, part, kRowAlign);
    return simd::RowSet{index, r.begin, r.end, compact};
  };
  if (IsQuantized(w.dtype)) {
    const simd::QuantizedActivations xq =
        QuantizeForWeights(x, n, w.cols, parts, w.dtype == DType::kQ4_0x16);
    auto dot = w.dtype == DType::kQ4_0x16 ? simd::DotRowsQ4x16 : simd::DotRowsQuant;
    if (parts <= 1) return dot(w, rows_of(0), xq, y, y_stride);
#pragma omp parallel num_threads(parts)
    dot(w, rows_of(omp_get_thread_num()), xq, y, y_stride);
    return;
  }
  if (parts <= 1) return simd::DotRowsFloat(w, rows_of(0), x, n, y, y_stride);
#pragma omp parallel num_threads(parts)
  simd::DotRowsFloat(w, rows_of(omp_get_thread_num()), x, n, y, y_stride);
}

}  // namespace

void MatMul(const MatrixView& w, const float* x, int64_t n, float* y) {
  DotRows(w, nullptr, w.rows, false, x, n, y, w.rows);
}

void GatherMatMul(const MatrixView& w, const int32_t* rows, int64_t count, const float* x,
                  int64_t n, float* y) {
  DotRows(w, rows, count, true, x, n, y, count);
}

void MatVecTransposedAccumulate(const MatrixView& w, const float* a, float* y) {
  MatMulTransposedAccumulate(w, a, 1, y);
}

namespace {

// The rows of a transposed product: `count` rows of `index` (null: rows 0..count), their
// activations at A[t, slot(i)] with a_stride floats per token.
struct TransposedRows {
  const int32_t* index = nullptr;
  int64_t count = 0;
  bool compact = false;
  int64_t a_stride = 0;

  simd::RowSet Part(Range r) const { return {index, r.begin, r.end, compact}; }
};

// Each thread owns a range of output columns and reads that part of every row.
void AccumulateSplitByColumns(const MatrixView& w, const TransposedRows& rows, const float* a,
                              int64_t n, float* y, int parts) {
  // Column boundaries: whole quantized blocks; for float rows, whole 64-byte lines of y.
  const int64_t align = IsQuantized(w.dtype) ? 32 : 16;
  parts = static_cast<int>(std::min<int64_t>(parts, (w.cols + align - 1) / align));
  const simd::RowSet all = rows.Part({0, rows.count});
  if (parts <= 1) {
    return simd::AccumulateRowsTransposed(w, all, a, rows.a_stride, n, 0, w.cols, y, w.cols);
  }
#pragma omp parallel num_threads(parts)
  {
    const Range cols = SplitRange(w.cols, parts, omp_get_thread_num(), align);
    simd::AccumulateRowsTransposed(w, all, a, rows.a_stride, n, cols.begin, cols.end, y, w.cols);
  }
}

// Each thread reads whole rows into its own partial output; the partials are summed.
void AccumulateSplitByRows(const MatrixView& w, const TransposedRows& rows, const float* a,
                           int64_t n, float* y, int parts) {
  parts = static_cast<int>(std::min<int64_t>(parts, rows.count));
  if (parts <= 1) {
    return simd::AccumulateRowsTransposed(w, rows.Part({0, rows.count}), a, rows.a_stride, n, 0,
                                          w.cols, y, w.cols);
  }
  // Thread 0 accumulates into y itself, the others into zeroed partial outputs.
  thread_local std::vector<float> partials;
  const int64_t outputs = n * w.cols;
  partials.assign(static_cast<size_t>((parts - 1) * outputs), 0.0f);
  float* partial = partials.data();
#pragma omp parallel num_threads(parts)
  {
    const int id = omp_get_thread_num();
    const Range part = SplitRange(rows.count, parts, id, 1);
    float* out = id == 0 ? y : partial + (id - 1) * outputs;
    simd::AccumulateRowsTransposed(w, rows.Part(part), a, rows.a_stride, n, 0, w.cols, out, w.cols);
#pragma omp barrier
    const Range slice = SplitRange(outputs, parts, id, 16);
    for (int other = 1; other < parts; ++other) {
      simd::Add(partial + (other - 1) * outputs + slice.begin, slice.size(), y + slice.begin);
    }
  }
}

void AccumulateTransposed(const MatrixView& w, const TransposedRows& rows, const float* a,
                          int64_t n, float* y) {
  if (n <= 0 || w.cols <= 0 || rows.count <= 0) return;
  const int threads = ThreadsFor(rows.count * w.cols * n);
  // Decode: whole rows per thread (each streams contiguous memory); prompts: the column split,
  // which needs no partial output of n · cols floats per thread.
  if (n == 1) return AccumulateSplitByRows(w, rows, a, n, y, threads);
  AccumulateSplitByColumns(w, rows, a, n, y, threads);
}

}  // namespace

void MatMulTransposedAccumulate(const MatrixView& w, const float* a, int64_t n, float* y) {
  AccumulateTransposed(w, {nullptr, w.rows, false, w.rows}, a, n, y);
}

// Decode splits the listed neurons into one block per thread (each streams whole, contiguous
// ffn_down_t rows into a private partial sum), prompts split the output columns, as the dense
// product does.
void GatherMatMulTransposedAccumulate(const MatrixView& w, const int32_t* rows, int64_t count,
                                      const float* a, int64_t n, float* y) {
  AccumulateTransposed(w, {rows, count, true, count}, a, n, y);
}

void DecodeRows(const MatrixView& w, int64_t row, int64_t count, float* out) {
  if (count <= 0) return;
  const int parts = static_cast<int>(std::min<int64_t>(ThreadsFor(count * w.cols), count));
  if (parts <= 1) return simd::DecodeRows(w, row, count, out);
#pragma omp parallel num_threads(parts)
  {
    const Range rows = SplitRange(count, parts, omp_get_thread_num(), 1);
    simd::DecodeRows(w, row + rows.begin, rows.size(), out + rows.begin * w.cols);
  }
}

void RmsNorm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  simd::RmsNorm(x, weight, n, eps, out);
}

void RopeInterleaved(float* v, int64_t n_heads, int64_t head_dim, int64_t pos,
                     const RopeFrequencies& rope) {
  simd::RopeInterleaved(v, n_heads, head_dim, pos, rope);
}

void RopeShift(float* rows, int64_t n_rows, int64_t row_stride, int64_t n_heads, int64_t head_dim,
               int64_t delta, const RopeFrequencies& rope) {
  if (n_rows <= 0 || head_dim <= 0) return;
  // One angle per pair for every row: the tables in f64 as RopeInterleaved computes its angles.
  std::vector<float> cosines(static_cast<size_t>(head_dim)), sines(static_cast<size_t>(head_dim));
  for (int64_t i = 0; i + 1 < head_dim; i += 2) {
    const double angle = static_cast<double>(delta) * rope.Frequency(i / 2, head_dim);
    cosines[i] = cosines[i + 1] = static_cast<float>(std::cos(angle));
    sines[i] = static_cast<float>(-std::sin(angle));
    sines[i + 1] = static_cast<float>(std::sin(angle));
  }
  const int parts =
      static_cast<int>(std::min<int64_t>(ThreadsFor(n_rows * n_heads * head_dim), n_rows));
  if (parts <= 1) {
    return simd::RopeShiftRows(rows, n_rows, row_stride, n_heads, head_dim, cosines.data(),
                               sines.data());
  }
#pragma omp parallel num_threads(parts)
  {
    const Range part = SplitRange(n_rows, parts, omp_get_thread_num(), 1);
    simd::RopeShiftRows(rows + part.begin * row_stride, part.size(), row_stride, n_heads, head_dim,
                        cosines.data(), sines.data());
  }
}

void Softmax(float* x, int64_t n) { simd::Softmax(x, n); }

void FfnCombine(ActivationKind act, float param, const float* gate, const float* up, int64_t n,
                float* out) {
  simd::FfnCombine(act, param, gate, up, n, out);
}

void ShiftedRelu(float* x, int64_t n, float shift) { simd::ShiftedRelu(x, n, shift); }

void Add(const float* x, int64_t n, float* y) { simd::Add(x, n, y); }

void Attention(const AttentionShape& shape, DType kv_type, const float* q, const void* k,
               const void* v, int64_t pos0, int64_t n, float* out) {
  if (n <= 0) return;
  const int64_t max_keys = pos0 + n;
  // Work ~ 2 · heads · keys · head_dim per token.
  const int threads = ThreadsFor(2 * n * shape.n_heads * max_keys * shape.head_dim);
  // Decode: the KV heads are split into one contiguous range per thread (each thread streams its
  // part of every cache row). Prompts: whole tokens per thread, round robin (later tokens attend
  // to more positions).
  const int64_t ranges = n == 1 ? std::min<int64_t>(threads, shape.n_kv_heads) : 1;
  const int64_t items = n * ranges;
  const int64_t scratch_floats = simd::AttentionScratchFloats(shape, max_keys);
  const int64_t token_floats = shape.n_heads * shape.head_dim;
  auto run = [&](int64_t item, std::vector<float>& scratch) {
    const int64_t t = item / ranges;
    const Range heads = SplitRange(shape.n_kv_heads, ranges, item % ranges, 1);
    simd::AttentionRange(shape, kv_type, q + t * token_floats, k, v, heads.begin, heads.end,
                         pos0 + t + 1, out + t * token_floats, scratch.data());
  };
  const int parts = static_cast<int>(std::min<int64_t>(threads, items));
  if (parts <= 1) {
    thread_local std::vector<float> scratch;
    if (scratch.size() < static_cast<size_t>(scratch_floats)) scratch.resize(scratch_floats);
    for (int64_t item = 0; item < items; ++item) run(item, scratch);
    return;
  }
#pragma omp parallel num_threads(parts)
  {
    thread_local std::vector<float> scratch;
    if (scratch.size() < static_cast<size_t>(scratch_floats)) scratch.resize(scratch_floats);
#pragma omp for schedule(static, 1)
    for (int64_t item = 0; item < items; ++item) run(item, scratch);
  }
}

void EncodeRows(DType dtype, const float* x, int64_t rows, int64_t cols, void* out) {
  if (rows <= 0) return;
  const size_t row_bytes = MakeMatrixView(dtype, 1, cols, nullptr).row_bytes;
  // A prompt's keys or values of a layer: rows split into one contiguous range per thread.
  const int parts = static_cast<int>(std::min<int64_t>(ThreadsFor(4 * rows * cols), rows));
  if (parts <= 1) return simd::EncodeRows(dtype, x, rows, cols, out);
#pragma omp parallel num_threads(parts)
  {
    const Range part = SplitRange(rows, parts, omp_get_thread_num(), 1);
    simd::EncodeRows(dtype, x + part.begin * cols, part.size(), cols,
                     static_cast<uint8_t*>(out) + part.begin * row_bytes);
  }
}

const char* SimdTargetName() { return simd::ChosenTargetName(); }

}  // namespace pinfer::cpu
