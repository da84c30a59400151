// Host side of the dense operations: argument checks, kernel choice, scratch memory.
#include "runtime/cuda/kernels.h"

#include "absl/strings/str_format.h"
#include "runtime/cuda/checks.h"
#include "runtime/cuda/cuda_status.h"
#include "runtime/cuda/launch.h"
#include "runtime/cuda/stream_internal.h"

namespace pinfer::cuda {

using internal::CheckActivationAlignment;
using internal::CheckCount;
using internal::CheckNotNull;
using internal::CheckWeights;
using internal::LaunchStatus;
using internal::NativeStream;
using internal::WeightsArg;

DeviceMatrix MakeDeviceMatrix(DType dtype, int64_t rows, int64_t cols, const void* device_data) {
  DeviceMatrix m;
  m.dtype = dtype;
  m.rows = rows;
  m.cols = cols;
  m.data = device_data;
  m.row_bytes =
      cols > 0 ? static_cast<size_t>(RowBytes(dtype, static_cast<uint64_t>(cols)).value_or(0)) : 0;
  return m;
}

DeviceMatrix SliceRows(const DeviceMatrix& m, int64_t first, int64_t count) {
  DeviceMatrix slice = m;
  slice.rows = count;
  slice.data = static_cast<const uint8_t*>(m.data) + static_cast<size_t>(first) * m.row_bytes;
  return slice;
}

absl::Status MatVec(Stream& stream, const DeviceMatrix& w, const float* x, float* y) {
  constexpr std::string_view kOp = "MatVec";
  absl::StatusOr<WeightsArg> arg = CheckWeights(w, kOp);
  if (!arg.ok()) return arg.status();
  if (w.rows == 0) return absl::OkStatus();
  if (absl::Status s = CheckNotNull(x, kOp, "x"); !s.ok()) return s;
  if (absl::Status s = CheckNotNull(y, kOp, "y"); !s.ok()) return s;
  if (absl::Status s = CheckActivationAlignment(*arg, x, kOp); !s.ok()) return s;
  return LaunchStatus(internal::LaunchMatVec(*arg, x, y, NativeStream(stream)), kOp);
}

namespace {

// y += Σ_k a[k] W[row_k] through per-split partial sums in scratch memory.
absl::Status TransposedAccumulate(Stream& stream, const WeightsArg& w, const int32_t* rows,
                                  const int32_t* count, int64_t max_count, const float* a, float* y,
                                  std::string_view op) {
  const int splits = internal::ChooseTransposedSplits(w, max_count, internal::SmCount(stream));
  internal::ScratchArena::Scope scratch(internal::Scratch(stream));
  absl::StatusOr<float*> partials =
      scratch.Allocate<float>(static_cast<size_t>(splits) * static_cast<size_t>(w.cols));
  if (!partials.ok()) return partials.status();
  const cudaStream_t native = NativeStream(stream);
  if (absl::Status s = LaunchStatus(
          internal::LaunchTransposedPartials(w, rows, count, a, splits, *partials, native), op);
      !s.ok()) {
    return s;
  }
  return LaunchStatus(internal::LaunchSumPartials(*partials, splits, w.cols, y, native), op);
}

}  // namespace

absl::Status MatVecTransposedAccumulate(Stream& stream, const DeviceMatrix& w, const float* a,
                                        float* y) {
  constexpr std::string_view kOp = "MatVecTransposedAccumulate";
  absl::StatusOr<WeightsArg> arg = CheckWeights(w, kOp);
  if (!arg.ok()) return arg.status();
  if (w.rows == 0) return absl::OkStatus();
  if (absl::Status s = CheckNotNull(a, kOp, "a"); !s.ok()) return s;
  if (absl::Status s = CheckNotNull(y, kOp, "y"); !s.ok()) return s;
  return TransposedAccumulate(stream, *arg, nullptr, nullptr, w.rows, a, y, kOp);
}

absl::Status SparseTransposedAccumulate(Stream& stream, const DeviceMatrix& w, const int32_t* rows,
                                        const int32_t* count, int64_t max_count, const float* a,
                                        float* y) {
  constexpr std::string_view kOp = "SparseTransposedAccumulate";
  absl::StatusOr<WeightsArg> arg = CheckWeights(w, kOp);
  if (!arg.ok()) return arg.status();
  if (absl::Status s = CheckCount(max_count, kOp, "max_count"); !s.ok()) return s;
  if (max_count == 0) return absl::OkStatus();
  if (absl::Status s = CheckNotNull(rows, kOp, "rows"); !s.ok()) return s;
  if (absl::Status s = CheckNotNull(count, kOp, "count"); !s.ok()) return s;
  if (absl::Status s = CheckNotNull(a, kOp, "a"); !s.ok()) return s;
  if (absl::Status s = CheckNotNull(y, kOp, "y"); !s.ok()) return s;
  return TransposedAccumulate(stream, *arg, rows, count, max_count, a, y, kOp);
}

absl::Status DecodeRows(Stream& stream, const DeviceMatrix& w, int64_t row, int64_t count,
                        float* out) {
  constexpr std::string_view kOp = "DecodeRows";
  absl::StatusOr<WeightsArg> arg = CheckWeights(w, kOp);
  if (!arg.ok()) return arg.status();
  if (row < 0 || count < 0 || row + count > w.rows) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: rows [%d, %d) are outside the matrix's %d rows", kOp, row, row + count, w.rows));
  }
  if (count == 0) return absl::OkStatus();
  if (absl::Status s = CheckNotNull(out, kOp, "out"); !s.ok()) return s;
  return LaunchStatus(
      internal::LaunchDecodeRows(*arg, nullptr, row, count, out, NativeStream(stream)), kOp);
}

absl::Status GatherRows(Stream& stream, const DeviceMatrix& w, const int32_t* row_ids,
                        int64_t count, float* out) {
  constexpr std::string_view kOp = "GatherRows";
  absl::StatusOr<WeightsArg> arg = CheckWeights(w, kOp);
  if (!arg.ok()) return arg.status();
  if (absl::Status s = CheckCount(count, kOp, "count"); !s.ok()) return s;
  if (count == 0) return absl::OkStatus();
  if (absl::Status s = CheckNotNull(row_ids, kOp, "row_ids"); !s.ok()) return s;
  if (absl::Status s = CheckNotNull(out, kOp, "out"); !s.ok()) return s;
  return LaunchStatus(
      internal::LaunchDecodeRows(*arg, row_ids, 0, count, out, NativeStream(stream)), kOp);
}

absl::Status RmsNorm(Stream& stream, const float* x, const float* weight, int64_t rows, int64_t n,
                     float eps, float* out) {
  constexpr std::string_view kOp = "RmsNorm";
  if (absl::Status s = CheckCount(rows, kOp, "rows"); !s.ok()) return s;
  if (n <= 0) return absl::InvalidArgumentError(absl::StrFormat("%s: bad length %d", kOp, n));
  if (rows == 0) return absl::OkStatus();
  for (const void* p : {static_cast<const void*>(x), static_cast<const void*>(weight),
                        static_cast<const void*>(out)}) {
    if (absl::Status s = CheckNotNull(p, kOp, "a buffer"); !s.ok()) return s;
  }
  return LaunchStatus(internal::LaunchRmsNorm(x, weight, rows, n, eps, out, NativeStream(stream)),
                      kOp);
}

absl::Status RopeInterleaved(Stream& stream, float* v, int64_t n_tokens, int64_t n_heads,
                             int64_t head_dim, int64_t pos0, const RopeFrequencies& rope) {
  constexpr std::string_view kOp = "RopeInterleaved";
  if (n_tokens < 0 || n_heads < 0 || head_dim <= 0 || head_dim % 2 != 0 || pos0 < 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: bad shape (%d tokens, %d heads, head_dim %d, position %d); head_dim must be even", kOp,
        n_tokens, n_heads, head_dim, pos0));
  }
  if (rope.n_factors > 0 && rope.n_factors != head_dim / 2) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: %d RoPE scaling factors for head_dim %d (one per pair)", kOp, rope.n_factors,
        head_dim));
  }
  if (n_tokens == 0 || n_heads == 0) return absl::OkStatus();
  if (absl::Status s = CheckNotNull(v, kOp, "v"); !s.ok()) return s;
  return LaunchStatus(
      internal::LaunchRope(v, n_tokens, n_heads, head_dim, pos0, rope, NativeStream(stream)), kOp);
}

absl::Status Softmax(Stream& stream, float* x, int64_t rows, int64_t n) {
  constexpr std::string_view kOp = "Softmax";
  if (absl::Status s = CheckCount(rows, kOp, "rows"); !s.ok()) return s;
  if (absl::Status s = CheckCount(n, kOp, "length"); !s.ok()) return s;
  if (rows == 0 || n == 0) return absl::OkStatus();
  if (absl::Status s = CheckNotNull(x, kOp, "x"); !s.ok()) return s;
  return LaunchStatus(internal::LaunchSoftmax(x, rows, n, NativeStream(stream)), kOp);
}

absl::Status FfnCombine(Stream& stream, ActivationKind act, float param, const float* gate,
                        const float* up, int64_t n, float* out, float threshold) {
  constexpr std::string_view kOp = "FfnCombine";
  if (absl::Status s = CheckCount(n, kOp, "length"); !s.ok()) return s;
  if (n == 0) return absl::OkStatus();
  for (const void* p : {static_cast<const void*>(gate), static_cast<const void*>(up),
                        static_cast<const void*>(out)}) {
    if (absl::Status s = CheckNotNull(p, kOp, "a buffer"); !s.ok()) return s;
  }
  return LaunchStatus(
      internal::LaunchFfnCombine(act, param, threshold, gate, up, n, out, NativeStream(stream)),
      kOp);
}

absl::Status ShiftedRelu(Stream& stream, float* x, int64_t n, float shift) {
  constexpr std::string_view kOp = "ShiftedRelu";
  if (absl::Status s = CheckCount(n, kOp, "length"); !s.ok()) return s;
  if (n == 0) return absl::OkStatus();
  if (absl::Status s = CheckNotNull(x, kOp, "x"); !s.ok()) return s;
  return LaunchStatus(internal::LaunchShiftedRelu(x, n, shift, NativeStream(stream)), kOp);
}

absl::Status Add(Stream& stream, const float* x, int64_t n, float* y) {
  constexpr std::string_view kOp = "Add";
  if (absl::Status s = CheckCount(n, kOp, "length"); !s.ok()) return s;
  if (n == 0) return absl::OkStatus();
  if (absl::Status s = CheckNotNull(x, kOp, "x"); !s.ok()) return s;
  if (absl::Status s = CheckNotNull(y, kOp, "y"); !s.ok()) return s;
  return LaunchStatus(internal::LaunchAdd(x, n, y, NativeStream(stream)), kOp);
}

}  // namespace pinfer::cuda
