// How much memory this process may still use, and the KV-cache buffers that do not touch a page
// before it is used. Together they let a context too large for the machine be refused with its
// numbers (and the largest context that fits) instead of being killed by the OOM killer, and keep
// a long context from costing its full size in RSS before any token reaches it.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <new>
#include <optional>
#include <utility>

namespace pinfer {

// The smaller of the kernel's MemAvailable (/proc/meminfo) and what this process's cgroup (v2
// memory.max - memory.current, or v1 limit - usage) still allows; nullopt when neither is known.
std::optional<uint64_t> AvailableMemoryBytes();

// A zero-initialised array backed by an anonymous private mapping: the kernel supplies zero pages
// on first touch, so capacity that is never reached costs address space, not memory. Move-only.
template <typename T>
class ZeroPages {
 public:
  ZeroPages() = default;
  // Throws std::bad_alloc when the mapping fails.
  explicit ZeroPages(size_t n) : size_(n) {
    if (n == 0) return;
    void* p = mmap(nullptr, n * sizeof(T), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    data_ = static_cast<T*>(p);
  }
  ~ZeroPages() { Release(); }
  ZeroPages(ZeroPages&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  ZeroPages& operator=(ZeroPages&& other) noexcept {
    if (this != &other) {
      Release();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  ZeroPages(const ZeroPages&) = delete;
  ZeroPages& operator=(const ZeroPages&) = delete;

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  void Release() {
    if (data_ != nullptr) munmap(data_, size_ * sizeof(T));
    data_ = nullptr;
    size_ = 0;
  }
  T* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace pinfer
