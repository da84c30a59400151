// Read-only, zero-copy access to a .pi artifact. Open() maps the file and validates its whole
// structure (magic, version, kind, header checksum, every offset/size/alignment, no overlapping
// tensors) before anything is handed out; tensor data checksums are verified on demand.
// Every error message starts with the file's path.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "format/dtype.h"
#include "format/mapped_file.h"
#include "format/metadata.h"
#include "format/pi_format.h"

namespace pinfer {

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<uint64_t> shape;  // row-major; shape.back() is the contiguous dimension
  uint64_t offset = 0;          // absolute, from the start of the file
  uint64_t size = 0;            // bytes
  uint64_t checksum = 0;        // XXH3-64 of the data

  uint64_t elements() const;
  // Product of all but the last dimension.
  uint64_t rows() const;
  uint64_t cols() const { return shape.back(); }
  std::string ShapeString() const;  // "[172, 64]"
};

struct PiOpenOptions {
  // When set, a file of another kind is rejected.
  std::optional<ArtifactKind> expected_kind;
  // Ask the kernel to read the whole mapping ahead (useful before timing a run).
  bool populate = false;
};

class PiFile {
 public:
  static absl::StatusOr<std::unique_ptr<PiFile>> Open(const std::string& path,
                                                      const PiOpenOptions& options = {});
  // Validates an in-memory image (fuzzing, tests). `bytes` must outlive the PiFile.
  static absl::StatusOr<std::unique_ptr<PiFile>> FromBytes(std::span<const uint8_t> bytes,
                                                           std::string display_name,
                                                           const PiOpenOptions& options = {});
  ~PiFile();
  PiFile(const PiFile&) = delete;
  PiFile& operator=(const PiFile&) = delete;

  const std::string& path() const { return path_; }
  ArtifactKind kind() const { return kind_; }
  uint16_t version_major() const { return header_.version_major; }
  uint16_t version_minor() const { return header_.version_minor; }
  const PiHeader& header() const { return header_; }
  uint64_t file_size() const { return size_; }
  const Metadata& metadata() const { return metadata_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }

  // nullptr when absent.
  const TensorInfo* Find(std::string_view name) const;
  // NotFound naming the file and tensor when absent.
  absl::StatusOr<const TensorInfo*> Get(std::string_view name) const;
  // Get(), also checking dtype class and shape: `expected_shape` must match exactly.
  absl::StatusOr<const TensorInfo*> GetChecked(std::string_view name,
                                               std::span<const uint64_t> expected_shape) const;
  std::span<const uint8_t> Data(const TensorInfo& tensor) const {
    return {base_ + tensor.offset, tensor.size};
  }
  template <typename T>
  const T* DataAs(const TensorInfo& tensor) const {
    return reinterpret_cast<const T*>(base_ + tensor.offset);
  }

  // Checks one tensor's data against its checksum.
  absl::Status VerifyTensor(const TensorInfo& tensor) const;
  // Checks every tensor; `progress(done_bytes, total_bytes)` is called between tensors.
  absl::Status VerifyAll(
      const std::function<void(uint64_t, uint64_t)>& progress = nullptr) const;

  // Identity of the content: XXH3-64 over every tensor's name, dtype, shape and checksum and every
  // metadata entry except the "provenance." ones. Two conversions of the same weights with the
  // same hparams have the same digest; later stages record it to reject artifacts made for
  // another model.
  uint64_t ContentDigest() const;
  std::string ContentDigestHex() const;

  // Metadata getters whose errors name this file.
  absl::StatusOr<int64_t> GetInt(std::string_view key) const;
  absl::StatusOr<double> GetFloat(std::string_view key) const;
  absl::StatusOr<std::string> GetString(std::string_view key) const;
  absl::StatusOr<bool> GetBool(std::string_view key) const;

  // Prefixes a status's message with this file's path.
  absl::Status Annotate(const absl::Status& status) const;

 private:
  PiFile() = default;
  absl::Status Parse(const PiOpenOptions& options);
  absl::Status Corrupt(std::string_view reason) const;

  std::string path_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  std::unique_ptr<MappedFile> mapping_;  // null for FromBytes
  PiHeader header_{};
  ArtifactKind kind_ = ArtifactKind::kModel;
  Metadata metadata_;
  std::vector<TensorInfo> tensors_;
  absl::flat_hash_map<std::string, size_t> by_name_;
};

}  // namespace pinfer
