#include "format/metadata.h"

#include "absl/strings/str_cat.h"
#include "format/strings.h"
#include "absl/strings/str_join.h"

namespace pinfer {
namespace {

// Arrays larger than this are rejected while parsing: no legitimate artifact comes close, and it
// bounds what a corrupt count can make us allocate.
constexpr uint64_t kMaxArrayElements = uint64_t{1} << 28;

template <typename T>
constexpr MetadataType TagOf();
template <>
constexpr MetadataType TagOf<bool>() { return MetadataType::kBool; }
template <>
constexpr MetadataType TagOf<int64_t>() { return MetadataType::kInt64; }
template <>
constexpr MetadataType TagOf<double>() { return MetadataType::kFloat64; }
template <>
constexpr MetadataType TagOf<std::string>() { return MetadataType::kString; }
template <>
constexpr MetadataType TagOf<std::vector<int64_t>>() { return MetadataType::kInt64Array; }
template <>
constexpr MetadataType TagOf<std::vector<float>>() { return MetadataType::kFloat32Array; }
template <>
constexpr MetadataType TagOf<std::vector<std::string>>() { return MetadataType::kStringArray; }

}  // namespace

std::string_view MetadataTypeName(MetadataType type) {
  switch (type) {
    case MetadataType::kBool: return "bool";
    case MetadataType::kInt64: return "int64";
    case MetadataType::kFloat64: return "float64";
    case MetadataType::kString: return "string";
    case MetadataType::kInt64Array: return "int64[]";
    case MetadataType::kFloat32Array: return "float32[]";
    case MetadataType::kStringArray: return "string[]";
  }
  return "unknown";
}

MetadataType TypeOf(const MetadataValue& value) {
  return std::visit([](const auto& v) { return TagOf<std::decay_t<decltype(v)>>(); }, value);
}

const MetadataValue* Metadata::Find(std::string_view key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second;
}

template <typename T>
absl::StatusOr<const T*> Metadata::GetTyped(std::string_view key) const {
  const MetadataValue* value = Find(key);
  if (value == nullptr) return absl::NotFoundError(absl::StrCat("metadata key '", Sv(key), "' is missing"));
  const T* typed = std::get_if<T>(value);
  if (typed == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("metadata key '", Sv(key), "' has type ",
                                                   Sv(MetadataTypeName(TypeOf(*value))), ", expected ",
                                                   Sv(MetadataTypeName(TagOf<T>()))));
  }
  return typed;
}

absl::StatusOr<bool> Metadata::GetBool(std::string_view key) const {
  auto v = GetTyped<bool>(key);
  if (!v.ok()) return v.status();
  return **v;
}
absl::StatusOr<int64_t> Metadata::GetInt(std::string_view key) const {
  auto v = GetTyped<int64_t>(key);
  if (!v.ok()) return v.status();
  return **v;
}
absl::StatusOr<double> Metadata::GetFloat(std::string_view key) const {
  if (const MetadataValue* value = Find(key); value != nullptr) {
    if (const int64_t* i = std::get_if<int64_t>(value)) return static_cast<double>(*i);
  }
  auto v = GetTyped<double>(key);
  if (!v.ok()) return v.status();
  return **v;
}
absl::StatusOr<std::string> Metadata::GetString(std::string_view key) const {
  auto v = GetTyped<std::string>(key);
  if (!v.ok()) return v.status();
  return **v;
}
absl::StatusOr<std::vector<int64_t>> Metadata::GetIntArray(std::string_view key) const {
  auto v = GetTyped<std::vector<int64_t>>(key);
  if (!v.ok()) return v.status();
  return **v;
}
absl::StatusOr<std::vector<float>> Metadata::GetFloatArray(std::string_view key) const {
  auto v = GetTyped<std::vector<float>>(key);
  if (!v.ok()) return v.status();
  return **v;
}
absl::StatusOr<std::vector<std::string>> Metadata::GetStringArray(std::string_view key) const {
  auto v = GetTyped<std::vector<std::string>>(key);
  if (!v.ok()) return v.status();
  return **v;
}
absl::StatusOr<const std::vector<std::string>*> Metadata::GetStringArrayRef(
    std::string_view key) const {
  return GetTyped<std::vector<std::string>>(key);
}
absl::StatusOr<const std::vector<float>*> Metadata::GetFloatArrayRef(std::string_view key) const {
  return GetTyped<std::vector<float>>(key);
}
absl::StatusOr<const std::vector<int64_t>*> Metadata::GetIntArrayRef(std::string_view key) const {
  return GetTyped<std::vector<int64_t>>(key);
}

void Metadata::Serialize(ByteWriter& writer) const {
  for (const auto& [key, value] : entries_) {
    writer.PutShortString(key);
    writer.Put<uint8_t>(static_cast<uint8_t>(TypeOf(value)));
    std::visit(
        [&writer](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, bool>) {
            writer.Put<uint8_t>(v ? 1 : 0);
          } else if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, double>) {
            writer.Put(v);
          } else if constexpr (std::is_same_v<T, std::string>) {
            writer.PutLongString(v);
          } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            writer.Put<uint64_t>(v.size());
            for (const std::string& s : v) writer.PutLongString(s);
          } else {
            writer.Put<uint64_t>(v.size());
            writer.PutBytes(v.data(), v.size() * sizeof(v[0]));
          }
        },
        value);
  }
}

namespace {

template <typename T>
bool ReadPodArray(ByteReader& reader, std::vector<T>* out) {
  uint64_t n;
  if (!reader.Get(&n) || n > kMaxArrayElements || n * sizeof(T) > reader.remaining()) return false;
  out->resize(n);
  std::span<const uint8_t> bytes;
  if (!reader.GetSpan(n * sizeof(T), &bytes)) return false;
  std::memcpy(out->data(), bytes.data(), bytes.size());
  return true;
}

}  // namespace

absl::StatusOr<Metadata> Metadata::Parse(ByteReader& reader, uint32_t count) {
  Metadata metadata;
  for (uint32_t i = 0; i < count; ++i) {
    std::string key;
    uint8_t tag;
    if (!reader.GetShortString(&key) || !reader.Get(&tag)) {
      return absl::DataLossError(absl::StrCat("metadata entry ", i, " of ", count, " is truncated"));
    }
    if (key.empty()) return absl::DataLossError(absl::StrCat("metadata entry ", i, " has an empty key"));
    if (metadata.Has(key)) {
      return absl::DataLossError(absl::StrCat("metadata key '", key, "' appears twice"));
    }
    bool ok = true;
    switch (static_cast<MetadataType>(tag)) {
      case MetadataType::kBool: {
        uint8_t b;
        ok = reader.Get(&b) && b <= 1;
        if (ok) metadata.SetBool(key, b == 1);
        break;
      }
      case MetadataType::kInt64: {
        int64_t v;
        ok = reader.Get(&v);
        if (ok) metadata.SetInt(key, v);
        break;
      }
      case MetadataType::kFloat64: {
        double v;
        ok = reader.Get(&v);
        if (ok) metadata.SetFloat(key, v);
        break;
      }
      case MetadataType::kString: {
        std::string v;
        ok = reader.GetLongString(&v);
        if (ok) metadata.SetString(key, std::move(v));
        break;
      }
      case MetadataType::kInt64Array: {
        std::vector<int64_t> v;
        ok = ReadPodArray(reader, &v);
        if (ok) metadata.SetIntArray(key, std::move(v));
        break;
      }
      case MetadataType::kFloat32Array: {
        std::vector<float> v;
        ok = ReadPodArray(reader, &v);
        if (ok) metadata.SetFloatArray(key, std::move(v));
        break;
      }
      case MetadataType::kStringArray: {
        uint64_t n;
        // Each string costs at least its 8-byte length, which bounds n by what is left.
        ok = reader.Get(&n) && n <= kMaxArrayElements && n <= reader.remaining() / 8;
        std::vector<std::string> v;
        if (ok) v.resize(n);
        for (uint64_t j = 0; ok && j < n; ++j) ok = reader.GetLongString(&v[j]);
        if (ok) metadata.SetStringArray(key, std::move(v));
        break;
      }
      default:
        return absl::DataLossError(
            absl::StrCat("metadata key '", key, "' has unknown type tag ", static_cast<int>(tag)));
    }
    if (!ok) {
      return absl::DataLossError(absl::StrCat("metadata value of '", key, "' is truncated or invalid"));
    }
  }
  return metadata;
}

std::string Metadata::Render(const MetadataValue& value, size_t max_items) {
  return std::visit(
      [max_items](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) {
          return v ? "true" : "false";
        } else if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, double>) {
          return absl::StrCat(v);
        } else if constexpr (std::is_same_v<T, std::string>) {
          return absl::StrCat("\"", v, "\"");
        } else {
          std::vector<std::string> items;
          for (size_t i = 0; i < v.size() && i < max_items; ++i) {
            if constexpr (std::is_same_v<T, std::vector<std::string>>) {
              items.push_back(absl::StrCat("\"", v[i], "\""));
            } else {
              items.push_back(absl::StrCat(v[i]));
            }
          }
          if (v.size() > max_items) items.push_back(absl::StrCat("... (", v.size(), " items)"));
          return absl::StrCat("[", absl::StrJoin(items, ", "), "]");
        }
      },
      value);
}

}  // namespace pinfer
