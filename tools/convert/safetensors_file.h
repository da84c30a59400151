// A bounds-checked reader of safetensors files (HuggingFace's weight format): u64 header length
// N, N bytes of JSON {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]},
// "__metadata__": {..}}, then the data; offsets are relative to the data start. Parse() validates
// the whole header before anything is handed out — JSON syntax, every entry's fields and types,
// that the byte range of each tensor matches its dtype and shape, lies inside the file and
// overlaps no other — and never throws (the JSON library is used in its non-throwing mode), so a
// fuzzer can drive it directly.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "format/dtype.h"

namespace pinfer {

struct SafetensorsTensor {
  std::string name;
  std::string dtype;  // as written: "F32", "BF16", "I64", ...
  std::vector<uint64_t> shape;
  uint64_t offset = 0;  // absolute, from the start of the file
  uint64_t size = 0;    // bytes
};

// Our dtype for a safetensors dtype name, or nullopt for those pinfer does not import.
std::optional<DType> SafetensorsDType(std::string_view name);

class SafetensorsFile {
 public:
  // `bytes` must outlive the SafetensorsFile; errors start with `display_name`.
  static absl::StatusOr<SafetensorsFile> Parse(std::span<const uint8_t> bytes,
                                               std::string display_name);

  const std::string& name() const { return name_; }
  const std::map<std::string, SafetensorsTensor, std::less<>>& tensors() const { return tensors_; }
  const SafetensorsTensor* Find(std::string_view name) const;
  std::span<const uint8_t> Data(const SafetensorsTensor& tensor) const {
    return bytes_.subspan(tensor.offset, tensor.size);
  }
  // The "__metadata__" string map (format hints such as {"format": "pt"}).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::string name_;
  std::span<const uint8_t> bytes_;
  std::map<std::string, SafetensorsTensor, std::less<>> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace pinfer
