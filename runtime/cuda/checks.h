// Argument checks and conversions shared by pinfer_cuda's host code (internal).
#pragma once

#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/cuda/kernels.h"
#include "runtime/cuda/launch.h"

namespace pinfer::cuda::internal {

// The kernel-side view of `w`, or InvalidArgument naming `op` and what is wrong (unsupported
// dtype, cols that do not fit the blocks, row_bytes that do not match, null or misaligned data).
absl::StatusOr<WeightsArg> CheckWeights(const DeviceMatrix& w, std::string_view op);
// InvalidArgument "<op>: <what> is null" when `pointer` is null.
absl::Status CheckNotNull(const void* pointer, std::string_view op, std::string_view what);
// The block kernels of quantized weights read x as float4: x must be 16-byte aligned.
absl::Status CheckActivationAlignment(const WeightsArg& w, const float* x, std::string_view op);
// InvalidArgument when n is negative.
absl::Status CheckCount(int64_t n, std::string_view op, std::string_view what);

// Splits along the rows for the transposed kernels (see transposed.cu).
int ChooseTransposedSplits(const WeightsArg& w, int64_t max_count, int sm_count);

}  // namespace pinfer::cuda::internal
