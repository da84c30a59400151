// Owned device and pinned host memory, and the copies between them (no CUDA types here).
#pragma once

#include <cstddef>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/cuda/stream.h"

namespace pinfer::cuda {

// Device memory (cudaMalloc: 256-byte aligned), freed on destruction. Move-only. Free it only once
// the work that uses it is done (the destructor does not synchronise).
class DeviceBuffer {
 public:
  static absl::StatusOr<DeviceBuffer> Allocate(size_t bytes);

  DeviceBuffer() = default;
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  ~DeviceBuffer();

  void* data() const { return data_; }
  size_t size() const { return size_; }
  template <typename T>
  T* As() const {
    return static_cast<T*>(data_);
  }
  void Reset();

 private:
  DeviceBuffer(void* data, size_t size) : data_(data), size_(size) {}
  void* data_ = nullptr;
  size_t size_ = 0;
};

// Page-locked host memory (cudaMallocHost): copies from and to it are truly asynchronous and run
// at full link speed. Use it for the hidden-state vectors exchanged every token.
class PinnedHostBuffer {
 public:
  static absl::StatusOr<PinnedHostBuffer> Allocate(size_t bytes);

  PinnedHostBuffer() = default;
  PinnedHostBuffer(PinnedHostBuffer&& other) noexcept;
  PinnedHostBuffer& operator=(PinnedHostBuffer&& other) noexcept;
  ~PinnedHostBuffer();

  void* data() const { return data_; }
  size_t size() const { return size_; }
  template <typename T>
  T* As() const {
    return static_cast<T*>(data_);
  }
  void Reset();

 private:
  PinnedHostBuffer(void* data, size_t size) : data_(data), size_(size) {}
  void* data_ = nullptr;
  size_t size_ = 0;
};

// Asynchronous copies on `stream` (from pageable host memory the runtime may stage and block).
absl::Status CopyToDevice(Stream& stream, void* device_dst, const void* host_src, size_t bytes);
absl::Status CopyToHost(Stream& stream, void* host_dst, const void* device_src, size_t bytes);
absl::Status CopyOnDevice(Stream& stream, void* device_dst, const void* device_src, size_t bytes);
absl::Status ZeroDevice(Stream& stream, void* device_dst, size_t bytes);

}  // namespace pinfer::cuda
