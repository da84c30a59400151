// `pi-place --calibrate`: measures the CPU side of the cost model on this machine.
//   read bandwidth       a STREAM-like read (64-bit sums over a large buffer, all threads)
//   scattered rows       the same read over a random 10% of rows of `row_bytes` (the neuron rows
//                        a sparse FFN touches), in increasing order, as the runtime visits them
//   MatVec               runtime/cpu's MatVec on a q4_0 matrix: bytes of weights per second,
//                        which caps both figures while the kernels are compute-bound
// cpu_bandwidth = min(read, MatVec); cpu_sparse_bandwidth = min(scattered rows, MatVec).
// Each figure is the best of `repeats` runs.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "tools/solve_placement/hardware_model.h"

namespace pinfer {

struct CalibrateOptions {
  uint64_t buffer_bytes = 256ull << 20;
  int64_t row_elements = 4096;  // a Llama-7B row
  int repeats = 5;
  int threads = 0;  // 0: OpenMP's default
};

struct CpuMeasurement {
  double read_bandwidth = 0;       // B/s
  double scattered_bandwidth = 0;  // B/s
  double matvec_bandwidth = 0;     // B/s of q4_0 weights
  int threads = 0;
};

absl::StatusOr<CpuMeasurement> MeasureCpu(const CalibrateOptions& options);

// `base` with its CPU figures replaced by the measurement (and cpu_source describing it).
HardwareModel WithMeasuredCpu(const HardwareModel& base, const CpuMeasurement& m);

}  // namespace pinfer
