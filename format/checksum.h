// The .pi checksum: XXH3-64 (seed 0) from libxxhash. Fast enough (~10+ GB/s) to checksum every
// tensor while writing a 70B model, and stable across versions and platforms.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace pinfer {

uint64_t Checksum(std::span<const uint8_t> bytes);
inline uint64_t Checksum(const void* data, size_t size) {
  return Checksum(std::span<const uint8_t>(static_cast<const uint8_t*>(data), size));
}
// 16 lowercase hex digits.
std::string ChecksumHex(uint64_t checksum);

// Incremental form, for data written or read in pieces.
class StreamingChecksum {
 public:
  StreamingChecksum();
  ~StreamingChecksum();
  StreamingChecksum(StreamingChecksum&&) noexcept;
  StreamingChecksum& operator=(StreamingChecksum&&) noexcept;
  void Update(std::span<const uint8_t> bytes);
  void Update(const void* data, size_t size) {
    Update(std::span<const uint8_t>(static_cast<const uint8_t*>(data), size));
  }
  uint64_t Digest() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace pinfer
