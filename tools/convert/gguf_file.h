// A bounds-checked reader of GGUF (v2 and v3) files, the format of llama.cpp and PowerInfer.
// Parse() takes the file's bytes (a mapping, or a fuzzer's buffer) and validates the whole
// structure before anything is handed out: magic, version, every count, string and array length
// against the bytes left, value types, tensor dimensions and types, that each tensor's data lies
// inside the file at the declared alignment, and that no two tensors overlap. It allocates in
// proportion to the input only, never to a count the file merely claims.
//
// Layout (little-endian): magic "GGUF" (or PowerInfer's "PWRI", same layout), u32 version,
// u64 tensor_count, u64 kv_count, kv_count x (string key, u32 type, value), tensor_count x
// (string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset), padding to the alignment
// (metadata "general.alignment", default 32), then the data; a tensor's offset is relative to the
// data start. Strings are u64 length + bytes. ne[0] is the contiguous dimension.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "format/dtype.h"

namespace pinfer {

// Wire values of GGUF metadata types (gguf.h).
enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};
std::string_view GgufValueTypeName(GgufValueType type);

// One metadata value. Integers of every width are widened (unsigned ones to uint64, signed ones
// to int64), floats to double. Arrays hold one element type (nested arrays are rejected, as
// llama.cpp does).
struct GgufValue {
  GgufValueType type = GgufValueType::kUint8;
  GgufValueType element_type = GgufValueType::kUint8;  // arrays only
  std::variant<uint64_t, int64_t, double, bool, std::string, std::vector<uint64_t>,
               std::vector<int64_t>, std::vector<double>, std::vector<bool>,
               std::vector<std::string>>
      value;
};

// GGML tensor types that GGUF files carry. Only those with a pinfer dtype can be converted; the
// others are still measured so the file is validated and the error names the type.
struct GgmlTypeInfo {
  uint32_t id;
  std::string_view name;
  uint32_t block_elements;
  uint32_t block_bytes;
  std::optional<DType> dtype;  // our equivalent (bit-identical blocks), if any
};
const GgmlTypeInfo* FindGgmlType(uint32_t id);

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> ne;  // GGUF order: ne[0] is contiguous
  uint32_t ggml_type = 0;
  uint64_t offset = 0;  // absolute, from the start of the file
  uint64_t size = 0;    // bytes

  // Our (row-major) shape: ne reversed.
  std::vector<uint64_t> Shape() const { return {ne.rbegin(), ne.rend()}; }
};

class GgufFile {
 public:
  // Validates `bytes` (which must outlive the GgufFile); errors start with `display_name`.
  static absl::StatusOr<GgufFile> Parse(std::span<const uint8_t> bytes, std::string display_name);

  const std::string& name() const { return name_; }
  uint32_t version() const { return version_; }
  // PowerInfer writes "PWRI" instead of "GGUF" for sparse (ReLU, predictor-carrying) models.
  bool powerinfer_magic() const { return powerinfer_magic_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  const std::map<std::string, GgufValue, std::less<>>& metadata() const { return metadata_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* FindTensor(std::string_view name) const;
  std::span<const uint8_t> TensorData(const GgufTensorInfo& tensor) const {
    return bytes_.subspan(tensor.offset, tensor.size);
  }

  bool Has(std::string_view key) const { return metadata_.find(key) != metadata_.end(); }
  // Typed getters; errors name the file and the key. Integer getters accept any integer type
  // whose value fits.
  absl::StatusOr<uint64_t> GetUint(std::string_view key) const;
  absl::StatusOr<int64_t> GetInt(std::string_view key) const;
  absl::StatusOr<double> GetFloat(std::string_view key) const;  // float or integer types
  absl::StatusOr<bool> GetBool(std::string_view key) const;
  absl::StatusOr<std::string> GetString(std::string_view key) const;
  absl::StatusOr<std::vector<std::string>> GetStringArray(std::string_view key) const;
  absl::StatusOr<std::vector<double>> GetFloatArray(std::string_view key) const;
  absl::StatusOr<std::vector<int64_t>> GetIntArray(std::string_view key) const;

 private:
  absl::StatusOr<const GgufValue*> Find(std::string_view key) const;

  std::string name_;
  std::span<const uint8_t> bytes_;
  uint32_t version_ = 0;
  bool powerinfer_magic_ = false;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::map<std::string, GgufValue, std::less<>> metadata_;
  std::vector<GgufTensorInfo> tensors_;
};

// True when the bytes start with a GGUF (or PWRI) magic.
bool LooksLikeGguf(std::span<const uint8_t> head);

}  // namespace pinfer
