#include "runtime/cuda/device.h"

#include <cuda_runtime_api.h>

#include "absl/strings/str_format.h"
#include "runtime/cuda/cuda_status.h"

namespace pinfer::cuda {

using internal::CudaStatus;

absl::StatusOr<int> DeviceCount() {
  int count = 0;
  if (absl::Status s = CudaStatus(cudaGetDeviceCount(&count), "cudaGetDeviceCount"); !s.ok()) {
    return s;
  }
  return count;
}

absl::Status CheckDeviceAvailable() {
  absl::StatusOr<int> count = DeviceCount();
  if (!count.ok()) return count.status();
  if (*count == 0) return absl::UnavailableError("cudaGetDeviceCount: no NVIDIA GPU found (0 devices)");
  return absl::OkStatus();
}

absl::Status SetDevice(int device) {
  return CudaStatus(cudaSetDevice(device), absl::StrFormat("cudaSetDevice(%d)", device));
}

absl::StatusOr<int> CurrentDevice() {
  int device = 0;
  if (absl::Status s = CudaStatus(cudaGetDevice(&device), "cudaGetDevice"); !s.ok()) return s;
  return device;
}

absl::Status SynchronizeDevice() {
  return CudaStatus(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}

absl::StatusOr<DeviceInfo> GetDeviceInfo(int device) {
  cudaDeviceProp props{};
  if (absl::Status s = CudaStatus(cudaGetDeviceProperties(&props, device),
                                  absl::StrFormat("cudaGetDeviceProperties(%d)", device));
      !s.ok()) {
    return s;
  }
  DeviceInfo info;
  info.index = device;
  info.name = props.name;
  info.compute_major = props.major;
  info.compute_minor = props.minor;
  info.sm_count = props.multiProcessorCount;
  info.total_memory_bytes = props.totalGlobalMem;
  info.l2_cache_bytes = static_cast<uint64_t>(props.l2CacheSize);

  // Optional attributes: a device that does not report them gets 0 (CudaStatus clears the error).
  int memory_clock_khz = 0;
  int bus_width_bits = 0;
  if (CudaStatus(cudaDeviceGetAttribute(&memory_clock_khz, cudaDevAttrMemoryClockRate, device),
                 "cudaDeviceGetAttribute(memoryClockRate)")
          .ok() &&
      CudaStatus(cudaDeviceGetAttribute(&bus_width_bits, cudaDevAttrGlobalMemoryBusWidth, device),
                 "cudaDeviceGetAttribute(globalMemoryBusWidth)")
          .ok()) {
    // Double data rate: two transfers per clock.
    info.peak_memory_bandwidth_gbps = 2.0 * memory_clock_khz * 1e3 * (bus_width_bits / 8.0) / 1e9;
  }

  // Free memory is a property of the current device: ask with `device` current, then restore.
  int previous = 0;
  if (absl::Status s = CudaStatus(cudaGetDevice(&previous), "cudaGetDevice"); !s.ok()) return s;
  if (absl::Status s = SetDevice(device); !s.ok()) return s;
  size_t free_bytes = 0, total_bytes = 0;
  absl::Status memory = CudaStatus(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
  if (absl::Status s = SetDevice(previous); !s.ok()) return s;
  if (!memory.ok()) return memory;
  info.free_memory_bytes = free_bytes;

  if (absl::Status s =
          CudaStatus(cudaRuntimeGetVersion(&info.runtime_version), "cudaRuntimeGetVersion");
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          CudaStatus(cudaDriverGetVersion(&info.driver_version), "cudaDriverGetVersion");
      !s.ok()) {
    return s;
  }
  return info;
}

std::string DescribeDevice(const DeviceInfo& info) {
  constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
  return absl::StrFormat("%s (sm_%d%d, %d SMs, %.1f GiB, %.1f GiB free, %.0f GB/s peak)", info.name,
                         info.compute_major, info.compute_minor, info.sm_count,
                         info.total_memory_bytes / kGiB, info.free_memory_bytes / kGiB,
                         info.peak_memory_bandwidth_gbps);
}

}  // namespace pinfer::cuda
