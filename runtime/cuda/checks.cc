#include "runtime/cuda/checks.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "runtime/cuda/tuning.h"

namespace pinfer::cuda {
namespace internal {

absl::StatusOr<WeightsArg> CheckWeights(const DeviceMatrix& w, std::string_view op) {
  WeightsArg arg;
  size_t alignment = 2;
  switch (w.dtype) {
    case DType::kF32:
      arg.type = WeightType::kF32;
      alignment = 4;
      break;
    case DType::kF16:
      arg.type = WeightType::kF16;
      break;
    case DType::kBF16:
      arg.type = WeightType::kBF16;
      break;
    case DType::kQ8_0:
      arg.type = WeightType::kQ8_0;
      break;
    case DType::kQ4_0:
      arg.type = WeightType::kQ4_0;
      break;
    default:
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: weights of dtype %s are not supported (f32, f16, bf16, q8_0, q4_0)", op,
          IsKnownDType(static_cast<uint32_t>(w.dtype)) ? DTypeName(w.dtype)
                                                       : std::string_view("unknown")));
  }
  if (w.rows < 0 || w.cols <= 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: bad weight shape [%d, %d]", op, w.rows, w.cols));
  }
  absl::StatusOr<uint64_t> row_bytes = RowBytes(w.dtype, static_cast<uint64_t>(w.cols));
  if (!row_bytes.ok()) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: %d columns do not fit %s blocks of %d",
                                                      op, w.cols, DTypeName(w.dtype),
                                                      GetDTypeInfo(w.dtype).block_elements));
  }
  if (*row_bytes != w.row_bytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: row_bytes %d does not match %d columns of %s (%d)", op, w.row_bytes,
                        w.cols, DTypeName(w.dtype), *row_bytes));
  }
  if (w.rows > 0 && w.data == nullptr) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: weight data is null", op));
  }
  if (reinterpret_cast<uintptr_t>(w.data) % alignment != 0) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: %s weight data is not %d-byte aligned",
                                                      op, DTypeName(w.dtype), alignment));
  }
  arg.data = static_cast<const uint8_t*>(w.data);
  arg.rows = w.rows;
  arg.cols = w.cols;
  arg.row_bytes = w.row_bytes;
  return arg;
}

absl::Status CheckNotNull(const void* pointer, std::string_view op, std::string_view what) {
  if (pointer != nullptr) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrFormat("%s: %s is null", op, what));
}

absl::Status CheckActivationAlignment(const WeightsArg& w, const float* x, std::string_view op) {
  const bool quantized = w.type == WeightType::kQ8_0 || w.type == WeightType::kQ4_0;
  if (!quantized || reinterpret_cast<uintptr_t>(x) % 16 == 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrFormat("%s: the activations of a quantized product must be 16-byte aligned", op));
}

absl::Status CheckCount(int64_t n, std::string_view op, std::string_view what) {
  if (n >= 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrFormat("%s: negative %s %d", op, what, n));
}

int ChooseTransposedSplits(const WeightsArg& w, int64_t max_count, int sm_count) {
  constexpr int64_t kMinRowsPerSplit = 8;  // one per warp of the block
  constexpr int64_t kMaxSplits = 65535;    // gridDim.y
  const int64_t tiles = TransposedColumnTiles(w);
  const int64_t target =
      std::max<int64_t>(1, int64_t{sm_count} * GetKernelTuning().transposed_blocks_per_sm);
  int64_t splits = (target + tiles - 1) / tiles;
  splits = std::min(splits, (max_count + kMinRowsPerSplit - 1) / kMinRowsPerSplit);
  return static_cast<int>(std::clamp<int64_t>(splits, 1, kMaxSplits));
}

}  // namespace internal

KernelTuning& MutableKernelTuning() {
  static KernelTuning tuning;
  return tuning;
}

}  // namespace pinfer::cuda
