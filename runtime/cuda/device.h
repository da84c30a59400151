// The CUDA device: is there one, what is it. Part of pinfer_cuda's public API, which uses no CUDA
// types so that code compiled by the host compiler alone (the executor, tests, tools) includes it.
//
// pinfer_cuda works on the calling thread's current device (device 0 unless SetDevice changed it).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pinfer::cuda {

// OK when at least one CUDA device can be used; otherwise why not (no driver, no device...), in a
// message that names the failed call (e.g. "cudaGetDeviceCount: no NVIDIA GPU found
// (cudaErrorNoDevice: ...)").
absl::Status CheckDeviceAvailable();
inline bool DeviceAvailable() { return CheckDeviceAvailable().ok(); }

absl::StatusOr<int> DeviceCount();
absl::Status SetDevice(int device);
absl::StatusOr<int> CurrentDevice();
// Waits for all work on the current device.
absl::Status SynchronizeDevice();

struct DeviceInfo {
  int index = 0;
  std::string name;
  int compute_major = 0;  // compute capability, e.g. 9.0 for Hopper
  int compute_minor = 0;
  int sm_count = 0;
  uint64_t total_memory_bytes = 0;
  uint64_t free_memory_bytes = 0;
  uint64_t l2_cache_bytes = 0;
  // From the memory clock and bus width the driver reports; 0 when it reports none.
  double peak_memory_bandwidth_gbps = 0.0;
  int runtime_version = 0;  // CUDA runtime and driver versions as 1000 * major + 10 * minor
  int driver_version = 0;
};

absl::StatusOr<DeviceInfo> GetDeviceInfo(int device);
// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB, 79.0 GiB free, 3352 GB/s peak)"
std::string DescribeDevice(const DeviceInfo& info);

}  // namespace pinfer::cuda
