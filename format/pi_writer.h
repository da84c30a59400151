// Writes a .pi artifact atomically and in a streaming fashion: the layout is fixed up front from
// the tensor specs, tensor bytes are streamed in (any tensor order, each tensor's bytes in order)
// and checksummed on the way, and Commit() writes the index and header, fsyncs and renames. A
// writer destroyed before Commit() leaves nothing behind, so a 70B model can be written with
// bounded memory and a failure never leaves a half-written artifact.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "format/atomic_file.h"
#include "format/checksum.h"
#include "format/dtype.h"
#include "format/metadata.h"
#include "format/pi_format.h"

namespace pinfer {

struct TensorSpec {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<uint64_t> shape;
};

class PiWriter {
 public:
  static absl::StatusOr<std::unique_ptr<PiWriter>> Create(const std::string& path, ArtifactKind kind,
                                                          Metadata metadata,
                                                          std::vector<TensorSpec> tensors);
  PiWriter(const PiWriter&) = delete;
  PiWriter& operator=(const PiWriter&) = delete;

  // Appends the next bytes of a tensor. Writing more than the tensor's size fails.
  absl::Status Append(std::string_view name, std::span<const uint8_t> bytes);
  absl::Status Append(std::string_view name, const void* data, size_t size) {
    return Append(name, std::span<const uint8_t>(static_cast<const uint8_t*>(data), size));
  }
  // The whole tensor at once.
  absl::Status Write(std::string_view name, const void* data, size_t size);

  // Fails unless every tensor is complete; then makes the file appear under its path.
  absl::Status Commit();

  const std::string& path() const { return file_->path(); }
  uint64_t total_bytes() const { return file_size_; }

 private:
  struct Slot {
    TensorSpec spec;
    uint64_t offset = 0;
    uint64_t size = 0;
    uint64_t written = 0;
    StreamingChecksum checksum;
  };
  PiWriter() = default;
  std::vector<uint8_t> SerializeIndex() const;

  std::unique_ptr<AtomicFile> file_;
  ArtifactKind kind_ = ArtifactKind::kModel;
  Metadata metadata_;
  std::vector<Slot> slots_;
  absl::flat_hash_map<std::string, size_t> by_name_;
  std::vector<uint8_t> metadata_bytes_;
  uint64_t index_size_ = 0;
  uint64_t data_offset_ = 0;
  uint64_t file_size_ = 0;
};

// Convenience for small artifacts held in memory.
struct TensorData {
  TensorSpec spec;
  std::vector<uint8_t> bytes;
};
absl::Status WritePiFile(const std::string& path, ArtifactKind kind, Metadata metadata,
                         const std::vector<TensorData>& tensors);

// Builds a TensorData from typed values (f32, i32 or u8 element types).
TensorData MakeTensor(std::string name, std::vector<uint64_t> shape, std::span<const float> values);
TensorData MakeTensor(std::string name, std::vector<uint64_t> shape, std::span<const int32_t> values);
TensorData MakeTensor(std::string name, std::vector<uint64_t> shape, std::span<const uint8_t> values);

}  // namespace pinfer
