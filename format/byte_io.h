// Little-endian serialization helpers with bounds checks. ByteReader never reads past its span:
// every read reports failure instead, so parsers of untrusted files cannot overrun.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace pinfer {

static_assert(std::endian::native == std::endian::little, "pinfer assumes a little-endian host");

class ByteWriter {
 public:
  template <typename T>
    requires std::is_trivially_copyable_v<T>
  void Put(const T& value) {
    const auto* p = reinterpret_cast<const uint8_t*>(&value);
    bytes_.insert(bytes_.end(), p, p + sizeof(T));
  }
  void PutBytes(const void* data, size_t size) {
    const auto* p = static_cast<const uint8_t*>(data);
    bytes_.insert(bytes_.end(), p, p + size);
  }
  // u16 length prefix: names and keys.
  void PutShortString(std::string_view s) {
    Put<uint16_t>(static_cast<uint16_t>(s.size()));
    PutBytes(s.data(), s.size());
  }
  // u64 length prefix: values.
  void PutLongString(std::string_view s) {
    Put<uint64_t>(s.size());
    PutBytes(s.data(), s.size());
  }
  void PadTo(size_t alignment) {
    while (bytes_.size() % alignment != 0) bytes_.push_back(0);
  }
  size_t size() const { return bytes_.size(); }
  std::vector<uint8_t>& bytes() { return bytes_; }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

class ByteReader {
 public:
  explicit ByteReader(std::span<const uint8_t> bytes) : bytes_(bytes) {}

  template <typename T>
    requires std::is_trivially_copyable_v<T>
  bool Get(T* value) {
    if (remaining() < sizeof(T)) return Fail();
    std::memcpy(value, bytes_.data() + position_, sizeof(T));
    position_ += sizeof(T);
    return true;
  }
  // A view of the next `size` bytes.
  bool GetSpan(uint64_t size, std::span<const uint8_t>* out) {
    if (remaining() < size) return Fail();
    *out = bytes_.subspan(position_, size);
    position_ += size;
    return true;
  }
  bool GetString(uint64_t size, std::string* out) {
    std::span<const uint8_t> span;
    if (!GetSpan(size, &span)) return false;
    out->assign(reinterpret_cast<const char*>(span.data()), span.size());
    return true;
  }
  bool GetShortString(std::string* out) {
    uint16_t size;
    return Get(&size) && GetString(size, out);
  }
  bool GetLongString(std::string* out) {
    uint64_t size;
    return Get(&size) && GetString(size, out);
  }
  bool Skip(uint64_t size) {
    if (remaining() < size) return Fail();
    position_ += size;
    return true;
  }
  uint64_t position() const { return position_; }
  uint64_t remaining() const { return bytes_.size() - position_; }
  // True once any read has run past the end.
  bool failed() const { return failed_; }

 private:
  bool Fail() {
    failed_ = true;
    return false;
  }
  std::span<const uint8_t> bytes_;
  uint64_t position_ = 0;
  bool failed_ = false;
};

}  // namespace pinfer
