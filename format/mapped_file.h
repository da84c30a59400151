// A read-only memory map of a whole file. Used for .pi artifacts and for conversion sources
// (GGUF, safetensors, llama2.c), so that large inputs are never copied into memory.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "absl/status/statusor.h"

namespace pinfer {

class MappedFile {
 public:
  // Errors name the path: missing file, not a regular file, unreadable.
  static absl::StatusOr<std::unique_ptr<MappedFile>> Open(const std::string& path,
                                                          bool populate = false);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace pinfer
