// What the CUDA kernel benchmarks share: GPU timing with events, and weight matrices of any dtype
// and size filled with valid random values.
#pragma once

#include <cstdint>
#include <functional>

#include "absl/status/statusor.h"
#include "format/dtype.h"
#include "runtime/cuda/buffers.h"
#include "runtime/cuda/kernels.h"
#include "runtime/cuda/stream.h"

namespace pinfer::cuda::bench {

// Mean GPU time of one call of `op`, in microseconds: `warmup` calls, then `iterations` calls
// back to back between two events (the launch cost overlaps the previous call's execution, as
// in a decode loop).
absl::StatusOr<double> TimeMicros(Stream& stream, int warmup, int iterations,
                                  const std::function<absl::Status()>& op);

// A [rows, cols] weight matrix on the device. A block of random rows, quantized on the host as a
// .pi file stores them, is repeated down the matrix: the bytes read are those of a real matrix.
struct DeviceWeights {
  DeviceBuffer storage;
  DeviceMatrix matrix;
  uint64_t bytes() const { return storage.size(); }
};
absl::StatusOr<DeviceWeights> RandomDeviceWeights(Stream& stream, DType dtype, int64_t rows,
                                                  int64_t cols, uint32_t seed, float scale);

// A device vector of n normal random floats (or a constant when scale is 0).
absl::StatusOr<DeviceBuffer> RandomDeviceVector(Stream& stream, int64_t n, uint32_t seed,
                                                float scale = 1.0f);

}  // namespace pinfer::cuda::bench
