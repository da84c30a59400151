// Typed key/value metadata of a .pi artifact (hparams, tokenizer, provenance). Keys are unique and
// kept sorted, so that the same content always serializes to the same bytes.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "format/byte_io.h"

namespace pinfer {

// The wire tags are part of the file format: never renumber.
enum class MetadataType : uint8_t {
  kBool = 1,
  kInt64 = 2,
  kFloat64 = 3,
  kString = 4,
  kInt64Array = 5,
  kFloat32Array = 6,
  kStringArray = 7,
};

using MetadataValue = std::variant<bool, int64_t, double, std::string, std::vector<int64_t>,
                                   std::vector<float>, std::vector<std::string>>;

std::string_view MetadataTypeName(MetadataType type);
MetadataType TypeOf(const MetadataValue& value);

class Metadata {
 public:
  void SetBool(std::string_view key, bool value) { Set(key, value); }
  void SetInt(std::string_view key, int64_t value) { Set(key, value); }
  void SetFloat(std::string_view key, double value) { Set(key, value); }
  void SetString(std::string_view key, std::string value) { Set(key, std::move(value)); }
  void SetIntArray(std::string_view key, std::vector<int64_t> value) { Set(key, std::move(value)); }
  void SetFloatArray(std::string_view key, std::vector<float> value) { Set(key, std::move(value)); }
  void SetStringArray(std::string_view key, std::vector<std::string> value) {
    Set(key, std::move(value));
  }
  void Set(std::string_view key, MetadataValue value) {
    entries_.insert_or_assign(std::string(key), std::move(value));
  }
  void Erase(std::string_view key) { entries_.erase(std::string(key)); }

  bool Has(std::string_view key) const { return entries_.count(std::string(key)) != 0; }
  const MetadataValue* Find(std::string_view key) const;

  // Typed getters: NotFound when the key is absent, InvalidArgument when its type differs.
  // GetFloat also accepts an int64 value.
  absl::StatusOr<bool> GetBool(std::string_view key) const;
  absl::StatusOr<int64_t> GetInt(std::string_view key) const;
  absl::StatusOr<double> GetFloat(std::string_view key) const;
  absl::StatusOr<std::string> GetString(std::string_view key) const;
  absl::StatusOr<std::vector<int64_t>> GetIntArray(std::string_view key) const;
  absl::StatusOr<std::vector<float>> GetFloatArray(std::string_view key) const;
  absl::StatusOr<std::vector<std::string>> GetStringArray(std::string_view key) const;
  // Borrowing forms for large arrays (tokenizer vocabularies).
  absl::StatusOr<const std::vector<std::string>*> GetStringArrayRef(std::string_view key) const;
  absl::StatusOr<const std::vector<float>*> GetFloatArrayRef(std::string_view key) const;
  absl::StatusOr<const std::vector<int64_t>*> GetIntArrayRef(std::string_view key) const;

  const std::map<std::string, MetadataValue, std::less<>>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }

  void Serialize(ByteWriter& writer) const;
  // Parses `count` entries; errors name the offending key.
  static absl::StatusOr<Metadata> Parse(ByteReader& reader, uint32_t count);

  // One value rendered for humans (arrays are abbreviated after `max_items`).
  static std::string Render(const MetadataValue& value, size_t max_items = 8);

 private:
  template <typename T>
  absl::StatusOr<const T*> GetTyped(std::string_view key) const;

  std::map<std::string, MetadataValue, std::less<>> entries_;
};

}  // namespace pinfer
