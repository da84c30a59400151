#include "runtime/cuda/buffers.h"

#include <cuda_runtime_api.h>

#include <utility>

#include "absl/strings/str_format.h"
#include "runtime/cuda/cuda_status.h"
#include "runtime/cuda/stream_internal.h"

namespace pinfer::cuda {

using internal::CudaStatus;
using internal::NativeStream;

absl::StatusOr<DeviceBuffer> DeviceBuffer::Allocate(size_t bytes) {
  if (bytes == 0) return DeviceBuffer();
  void* data = nullptr;
  if (absl::Status s =
          CudaStatus(cudaMalloc(&data, bytes), absl::StrFormat("cudaMalloc(%d bytes)", bytes));
      !s.ok()) {
    return s;
  }
  return DeviceBuffer(data, bytes);
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    Reset();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

DeviceBuffer::~DeviceBuffer() { Reset(); }

void DeviceBuffer::Reset() {
  if (data_ != nullptr) cudaFree(data_);
  data_ = nullptr;
  size_ = 0;
}

absl::StatusOr<PinnedHostBuffer> PinnedHostBuffer::Allocate(size_t bytes) {
  if (bytes == 0) return PinnedHostBuffer();
  void* data = nullptr;
  if (absl::Status s = CudaStatus(cudaMallocHost(&data, bytes),
                                  absl::StrFormat("cudaMallocHost(%d bytes)", bytes));
      !s.ok()) {
    return s;
  }
  return PinnedHostBuffer(data, bytes);
}

PinnedHostBuffer::PinnedHostBuffer(PinnedHostBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

PinnedHostBuffer& PinnedHostBuffer::operator=(PinnedHostBuffer&& other) noexcept {
  if (this != &other) {
    Reset();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

PinnedHostBuffer::~PinnedHostBuffer() { Reset(); }

void PinnedHostBuffer::Reset() {
  if (data_ != nullptr) cudaFreeHost(data_);
  data_ = nullptr;
  size_ = 0;
}

absl::Status CopyToDevice(Stream& stream, void* device_dst, const void* host_src, size_t bytes) {
  if (bytes == 0) return absl::OkStatus();
  return CudaStatus(
      cudaMemcpyAsync(device_dst, host_src, bytes, cudaMemcpyHostToDevice, NativeStream(stream)),
      "cudaMemcpyAsync(host to device)");
}

absl::Status CopyToHost(Stream& stream, void* host_dst, const void* device_src, size_t bytes) {
  if (bytes == 0) return absl::OkStatus();
  return CudaStatus(
      cudaMemcpyAsync(host_dst, device_src, bytes, cudaMemcpyDeviceToHost, NativeStream(stream)),
      "cudaMemcpyAsync(device to host)");
}

absl::Status CopyOnDevice(Stream& stream, void* device_dst, const void* device_src, size_t bytes) {
  if (bytes == 0) return absl::OkStatus();
  return CudaStatus(cudaMemcpyAsync(device_dst, device_src, bytes, cudaMemcpyDeviceToDevice,
                                    NativeStream(stream)),
                    "cudaMemcpyAsync(device to device)");
}

absl::Status ZeroDevice(Stream& stream, void* device_dst, size_t bytes) {
  if (bytes == 0) return absl::OkStatus();
  return CudaStatus(cudaMemsetAsync(device_dst, 0, bytes, NativeStream(stream)), "cudaMemsetAsync");
}

}  // namespace pinfer::cuda
