#include "tools/convert/gguf_file.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "format/byte_io.h"
#include "format/strings.h"

namespace pinfer {
namespace {

constexpr char kGgufMagic[4] = {'G', 'G', 'U', 'F'};
constexpr char kPowerInferMagic[4] = {'P', 'W', 'R', 'I'};
constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS
constexpr uint64_t kDefaultAlignment = 32;
constexpr uint64_t kMaxAlignment = uint64_t{1} << 30;

constexpr std::array<GgmlTypeInfo, 31> kGgmlTypes = {{
    {0, "F32", 1, 4, DType::kF32},          {1, "F16", 1, 2, DType::kF16},
    {2, "Q4_0", 32, 18, DType::kQ4_0},      {3, "Q4_1", 32, 20, std::nullopt},
    {6, "Q5_0", 32, 22, std::nullopt},      {7, "Q5_1", 32, 24, std::nullopt},
    {8, "Q8_0", 32, 34, DType::kQ8_0},      {9, "Q8_1", 32, 36, std::nullopt},
    {10, "Q2_K", 256, 84, std::nullopt},    {11, "Q3_K", 256, 110, std::nullopt},
    {12, "Q4_K", 256, 144, std::nullopt},   {13, "Q5_K", 256, 176, std::nullopt},
    {14, "Q6_K", 256, 210, std::nullopt},   {15, "Q8_K", 256, 292, std::nullopt},
    {16, "IQ2_XXS", 256, 66, std::nullopt}, {17, "IQ2_XS", 256, 74, std::nullopt},
    {18, "IQ3_XXS", 256, 98, std::nullopt}, {19, "IQ1_S", 256, 50, std::nullopt},
    {20, "IQ4_NL", 32, 18, std::nullopt},   {21, "IQ3_S", 256, 110, std::nullopt},
    {22, "IQ2_S", 256, 82, std::nullopt},   {23, "IQ4_XS", 256, 136, std::nullopt},
    {24, "I8", 1, 1, std::nullopt},         {25, "I16", 1, 2, std::nullopt},
    {26, "I32", 1, 4, std::nullopt},        {27, "I64", 1, 8, std::nullopt},
    {28, "F64", 1, 8, std::nullopt},        {29, "IQ1_M", 256, 56, std::nullopt},
    {30, "BF16", 1, 2, DType::kBF16},       {34, "TQ1_0", 256, 54, std::nullopt},
    {35, "TQ2_0", 256, 66, std::nullopt},
}};

// Bytes an element of this scalar type takes (strings: the minimum, an empty string).
uint64_t MinimumSize(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
      return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32:
      return 4;
    case GgufValueType::kString:
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64:
      return 8;
    case GgufValueType::kArray:
      return 12;
  }
  return 1;
}

bool IsKnownValueType(uint32_t raw) {
  return raw <= static_cast<uint32_t>(GgufValueType::kFloat64);
}

bool IsUnsigned(GgufValueType t) {
  return t == GgufValueType::kUint8 || t == GgufValueType::kUint16 || t == GgufValueType::kUint32 ||
         t == GgufValueType::kUint64;
}
bool IsSigned(GgufValueType t) {
  return t == GgufValueType::kInt8 || t == GgufValueType::kInt16 || t == GgufValueType::kInt32 ||
         t == GgufValueType::kInt64;
}
bool IsFloat(GgufValueType t) {
  return t == GgufValueType::kFloat32 || t == GgufValueType::kFloat64;
}

// Reads one scalar of `type`, widened. False when the bytes run out or a bool is not 0/1.
template <typename Sink>
bool ReadScalar(ByteReader& r, GgufValueType type, Sink&& sink) {
  switch (type) {
    case GgufValueType::kUint8: {
      uint8_t v;
      return r.Get(&v) && (sink(uint64_t{v}), true);
    }
    case GgufValueType::kInt8: {
      int8_t v;
      return r.Get(&v) && (sink(int64_t{v}), true);
    }
    case GgufValueType::kUint16: {
      uint16_t v;
      return r.Get(&v) && (sink(uint64_t{v}), true);
    }
    case GgufValueType::kInt16: {
      int16_t v;
      return r.Get(&v) && (sink(int64_t{v}), true);
    }
    case GgufValueType::kUint32: {
      uint32_t v;
      return r.Get(&v) && (sink(uint64_t{v}), true);
    }
    case GgufValueType::kInt32: {
      int32_t v;
      return r.Get(&v) && (sink(int64_t{v}), true);
    }
    case GgufValueType::kUint64: {
      uint64_t v;
      return r.Get(&v) && (sink(v), true);
    }
    case GgufValueType::kInt64: {
      int64_t v;
      return r.Get(&v) && (sink(v), true);
    }
    case GgufValueType::kFloat32: {
      float v;
      return r.Get(&v) && (sink(double{v}), true);
    }
    case GgufValueType::kFloat64: {
      double v;
      return r.Get(&v) && (sink(v), true);
    }
    case GgufValueType::kBool: {
      uint8_t v;
      if (!r.Get(&v) || v > 1) return false;
      sink(v == 1);
      return true;
    }
    case GgufValueType::kString: {
      std::string s;
      if (!r.GetLongString(&s)) return false;
      sink(std::move(s));
      return true;
    }
    case GgufValueType::kArray:
      return false;
  }
  return false;
}

// Parses one value of `type` (an array when type is kArray). Returns an error reason, or "".
std::string ReadValue(ByteReader& r, GgufValueType type, GgufValue* out) {
  out->type = type;
  if (type != GgufValueType::kArray) {
    bool ok = ReadScalar(r, type, [out](auto v) { out->value = std::move(v); });
    return ok ? "" : (r.failed() ? "is truncated" : "has an invalid value");
  }
  uint32_t raw_element;
  uint64_t n;
  if (!r.Get(&raw_element) || !r.Get(&n)) return "is truncated";
  if (!IsKnownValueType(raw_element))
    return absl::StrCat("has unknown array element type ", raw_element);
  const auto element = static_cast<GgufValueType>(raw_element);
  if (element == GgufValueType::kArray) return "is a nested array (not supported)";
  out->element_type = element;
  // The count is checked against the bytes left before anything is reserved.
  if (n > r.remaining() / MinimumSize(element)) {
    return absl::StrCat("claims ", n, " elements, more than the file holds");
  }
  auto read_all = [&](auto& vec) -> std::string {
    using Vec = std::decay_t<decltype(vec)>;
    vec.reserve(static_cast<size_t>(n));
    for (uint64_t i = 0; i < n; ++i) {
      bool ok = ReadScalar(r, element, [&vec](auto v) {
        if constexpr (std::is_convertible_v<decltype(v), typename Vec::value_type>) {
          vec.push_back(static_cast<typename Vec::value_type>(std::move(v)));
        }
      });
      if (!ok) return r.failed() ? "is truncated" : absl::StrCat("has an invalid element ", i);
    }
    return "";
  };
  std::string error;
  if (IsUnsigned(element)) {
    std::vector<uint64_t> v;
    error = read_all(v);
    out->value = std::move(v);
  } else if (IsSigned(element)) {
    std::vector<int64_t> v;
    error = read_all(v);
    out->value = std::move(v);
  } else if (IsFloat(element)) {
    std::vector<double> v;
    error = read_all(v);
    out->value = std::move(v);
  } else if (element == GgufValueType::kBool) {
    std::vector<bool> v;
    error = read_all(v);
    out->value = std::move(v);
  } else {
    std::vector<std::string> v;
    error = read_all(v);
    out->value = std::move(v);
  }
  return error;
}

uint64_t AlignUp(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

}  // namespace

std::string_view GgufValueTypeName(GgufValueType type) {
  static constexpr std::string_view kNames[] = {"u8",  "i8",  "u16",  "i16",    "u32",
                                                "i32", "f32", "bool", "string", "array",
                                                "u64", "i64", "f64"};
  const auto i = static_cast<uint32_t>(type);
  return i < std::size(kNames) ? kNames[i] : "unknown";
}

const GgmlTypeInfo* FindGgmlType(uint32_t id) {
  for (const GgmlTypeInfo& t : kGgmlTypes) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

bool LooksLikeGguf(std::span<const uint8_t> head) {
  return head.size() >= 4 && (std::memcmp(head.data(), kGgufMagic, 4) == 0 ||
                              std::memcmp(head.data(), kPowerInferMagic, 4) == 0);
}

absl::StatusOr<GgufFile> GgufFile::Parse(std::span<const uint8_t> bytes, std::string display_name) {
  GgufFile file;
  file.name_ = std::move(display_name);
  file.bytes_ = bytes;
  const std::string& name = file.name_;
  auto corrupt = [&name](auto&&... parts) {
    return absl::DataLossError(absl::StrCat(name, ": ", parts...));
  };
  ByteReader r(bytes);
  char magic[4];
  if (!r.Get(&magic)) return corrupt("truncated: too small for a GGUF header");
  if (std::memcmp(magic, kGgufMagic, 4) == 0) {
    file.powerinfer_magic_ = false;
  } else if (std::memcmp(magic, kPowerInferMagic, 4) == 0) {
    file.powerinfer_magic_ = true;
  } else {
    return corrupt("not a GGUF file (wrong magic)");
  }
  uint32_t version;
  uint64_t tensor_count, kv_count;
  if (!r.Get(&version)) return corrupt("truncated: too small for a GGUF header");
  if (version == 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        name,
        ": GGUF version 1 is not supported (versions 2 and 3 are; re-convert the model with "
        "a current llama.cpp)"));
  }
  if (version != 2 && version != 3) {
    if ((version & 0xFFFFu) == 0 && ((version >> 24) == 2 || (version >> 24) == 3)) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": big-endian GGUF files are not supported"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": GGUF version ", version, " is not supported (2 or 3)"));
  }
  file.version_ = version;
  if (!r.Get(&tensor_count) || !r.Get(&kv_count)) {
    return corrupt("truncated: too small for a GGUF header");
  }
  // Each entry takes a minimum number of bytes, which bounds the counts by the file size.
  if (kv_count > r.remaining() / 13) {
    return corrupt("metadata count ", kv_count, " does not fit in the file");
  }
  if (tensor_count > r.remaining() / 32) {
    return corrupt("tensor count ", tensor_count, " does not fit in the file");
  }

  for (uint64_t i = 0; i < kv_count; ++i) {
    std::string key;
    uint32_t raw_type;
    if (!r.GetLongString(&key) || !r.Get(&raw_type)) {
      return corrupt("truncated in metadata entry ", i, " of ", kv_count);
    }
    if (key.empty()) return corrupt("metadata entry ", i, " has an empty key");
    if (!IsKnownValueType(raw_type)) {
      return corrupt("metadata '", key, "' has unknown type ", raw_type);
    }
    GgufValue value;
    if (std::string error = ReadValue(r, static_cast<GgufValueType>(raw_type), &value);
        !error.empty()) {
      return corrupt("metadata '", key, "' ", error);
    }
    if (!file.metadata_.emplace(key, std::move(value)).second) {
      return corrupt("metadata key '", key, "' appears twice");
    }
  }

  if (auto it = file.metadata_.find("general.alignment"); it != file.metadata_.end()) {
    const GgufValue& v = it->second;
    const uint64_t* u = std::get_if<uint64_t>(&v.value);
    if (u == nullptr || *u == 0 || (*u & (*u - 1)) != 0 || *u > kMaxAlignment) {
      return corrupt("general.alignment must be a power of two");
    }
    file.alignment_ = *u;
  } else {
    file.alignment_ = kDefaultAlignment;
  }

  file.tensors_.reserve(static_cast<size_t>(tensor_count));
  for (uint64_t i = 0; i < tensor_count; ++i) {
    GgufTensorInfo t;
    uint32_t n_dims;
    if (!r.GetLongString(&t.name) || !r.Get(&n_dims)) {
      return corrupt("truncated in tensor info ", i, " of ", tensor_count);
    }
    if (t.name.empty()) return corrupt("tensor info ", i, " has an empty name");
    if (n_dims == 0 || n_dims > kMaxDims) {
      return corrupt("tensor '", t.name, "' has ", n_dims, " dimensions (1 to ", kMaxDims,
                     " allowed)");
    }
    t.ne.resize(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) {
      if (!r.Get(&t.ne[d])) return corrupt("truncated in tensor info '", t.name, "'");
      if (t.ne[d] == 0 || t.ne[d] > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return corrupt("tensor '", t.name, "' has an invalid dimension ", t.ne[d]);
      }
    }
    uint64_t relative_offset;
    if (!r.Get(&t.ggml_type) || !r.Get(&relative_offset)) {
      return corrupt("truncated in tensor info '", t.name, "'");
    }
    const GgmlTypeInfo* type = FindGgmlType(t.ggml_type);
    if (type == nullptr)
      return corrupt("tensor '", t.name, "' has unknown ggml type ", t.ggml_type);
    if (t.ne[0] % type->block_elements != 0) {
      return corrupt("tensor '", t.name, "': a row of ", t.ne[0], " elements is not a multiple of ",
                     Sv(type->name), "'s ", type->block_elements, "-element block");
    }
    const uint64_t blocks = t.ne[0] / type->block_elements;
    if (blocks > std::numeric_limits<uint64_t>::max() / type->block_bytes) {
      return corrupt("tensor '", t.name, "' is too large");
    }
    uint64_t size = blocks * type->block_bytes;
    for (uint32_t d = 1; d < n_dims; ++d) {
      if (size > std::numeric_limits<uint64_t>::max() / t.ne[d]) {
        return corrupt("tensor '", t.name, "' is too large");
      }
      size *= t.ne[d];
    }
    t.size = size;
    t.offset = relative_offset;  // made absolute below, once the data start is known
    file.tensors_.push_back(std::move(t));
  }

  file.data_offset_ = AlignUp(r.position(), file.alignment_);
  if (tensor_count > 0 && file.data_offset_ > bytes.size()) {
    return corrupt("truncated: the tensor data is missing");
  }
  const uint64_t data_size = bytes.size() - std::min<uint64_t>(file.data_offset_, bytes.size());
  for (GgufTensorInfo& t : file.tensors_) {
    if (t.offset % file.alignment_ != 0) {
      return corrupt("tensor '", t.name, "' offset ", t.offset, " is not ", file.alignment_,
                     "-byte aligned");
    }
    if (t.offset > data_size || t.size > data_size - t.offset) {
      return corrupt("truncated: tensor '", t.name, "' (", t.size, " bytes at data offset ",
                     t.offset, ") lies beyond the end of the file");
    }
    t.offset += file.data_offset_;
  }
  std::vector<const GgufTensorInfo*> by_offset;
  by_offset.reserve(file.tensors_.size());
  for (const GgufTensorInfo& t : file.tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](const auto* a, const auto* b) {
    return a->offset != b->offset ? a->offset < b->offset : a->name < b->name;
  });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i - 1]->offset + by_offset[i - 1]->size > by_offset[i]->offset) {
      return corrupt("tensors '", by_offset[i - 1]->name, "' and '", by_offset[i]->name,
                     "' overlap");
    }
  }
  std::vector<std::string_view> names;
  names.reserve(file.tensors_.size());
  for (const GgufTensorInfo& t : file.tensors_) names.push_back(t.name);
  std::sort(names.begin(), names.end());
  if (auto dup = std::adjacent_find(names.begin(), names.end()); dup != names.end()) {
    return corrupt("tensor '", Sv(*dup), "' appears twice");
  }
  return file;
}

const GgufTensorInfo* GgufFile::FindTensor(std::string_view name) const {
  for (const GgufTensorInfo& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

absl::StatusOr<const GgufValue*> GgufFile::Find(std::string_view key) const {
  auto it = metadata_.find(key);
  if (it == metadata_.end()) {
    return absl::NotFoundError(absl::StrCat(name_, ": metadata '", Sv(key), "' is missing"));
  }
  return &it->second;
}

namespace {

absl::Status WrongType(const std::string& file, std::string_view key, const GgufValue& v,
                       std::string_view expected) {
  std::string actual(GgufValueTypeName(v.type));
  if (v.type == GgufValueType::kArray) {
    actual = absl::StrCat("array of ", Sv(GgufValueTypeName(v.element_type)));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(file, ": metadata '", Sv(key), "' is ", actual, ", expected ", Sv(expected)));
}

}  // namespace

absl::StatusOr<uint64_t> GgufFile::GetUint(std::string_view key) const {
  absl::StatusOr<const GgufValue*> v = Find(key);
  if (!v.ok()) return v.status();
  if (const uint64_t* u = std::get_if<uint64_t>(&(*v)->value)) return *u;
  if (const int64_t* i = std::get_if<int64_t>(&(*v)->value); i != nullptr && *i >= 0) {
    return static_cast<uint64_t>(*i);
  }
  return WrongType(name_, key, **v, "a non-negative integer");
}

absl::StatusOr<int64_t> GgufFile::GetInt(std::string_view key) const {
  absl::StatusOr<const GgufValue*> v = Find(key);
  if (!v.ok()) return v.status();
  if (const int64_t* i = std::get_if<int64_t>(&(*v)->value)) return *i;
  if (const uint64_t* u = std::get_if<uint64_t>(&(*v)->value);
      u != nullptr && *u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return static_cast<int64_t>(*u);
  }
  return WrongType(name_, key, **v, "an integer");
}

absl::StatusOr<double> GgufFile::GetFloat(std::string_view key) const {
  absl::StatusOr<const GgufValue*> v = Find(key);
  if (!v.ok()) return v.status();
  if (const double* d = std::get_if<double>(&(*v)->value)) return *d;
  if (const int64_t* i = std::get_if<int64_t>(&(*v)->value)) return static_cast<double>(*i);
  if (const uint64_t* u = std::get_if<uint64_t>(&(*v)->value)) return static_cast<double>(*u);
  return WrongType(name_, key, **v, "a number");
}

absl::StatusOr<bool> GgufFile::GetBool(std::string_view key) const {
  absl::StatusOr<const GgufValue*> v = Find(key);
  if (!v.ok()) return v.status();
  if (const bool* b = std::get_if<bool>(&(*v)->value)) return *b;
  return WrongType(name_, key, **v, "bool");
}

absl::StatusOr<std::string> GgufFile::GetString(std::string_view key) const {
  absl::StatusOr<const GgufValue*> v = Find(key);
  if (!v.ok()) return v.status();
  if (const std::string* s = std::get_if<std::string>(&(*v)->value)) return *s;
  return WrongType(name_, key, **v, "string");
}

absl::StatusOr<std::vector<std::string>> GgufFile::GetStringArray(std::string_view key) const {
  absl::StatusOr<const GgufValue*> v = Find(key);
  if (!v.ok()) return v.status();
  if (const auto* a = std::get_if<std::vector<std::string>>(&(*v)->value)) return *a;
  return WrongType(name_, key, **v, "array of string");
}

absl::StatusOr<std::vector<double>> GgufFile::GetFloatArray(std::string_view key) const {
  absl::StatusOr<const GgufValue*> v = Find(key);
  if (!v.ok()) return v.status();
  if (const auto* a = std::get_if<std::vector<double>>(&(*v)->value)) return *a;
  return WrongType(name_, key, **v, "array of f32");
}

absl::StatusOr<std::vector<int64_t>> GgufFile::GetIntArray(std::string_view key) const {
  absl::StatusOr<const GgufValue*> v = Find(key);
  if (!v.ok()) return v.status();
  if (const auto* a = std::get_if<std::vector<int64_t>>(&(*v)->value)) return *a;
  if (const auto* a = std::get_if<std::vector<uint64_t>>(&(*v)->value)) {
    std::vector<int64_t> out;
    out.reserve(a->size());
    for (uint64_t u : *a) {
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return WrongType(name_, key, **v, "an array of integers that fit in 64 bits");
      }
      out.push_back(static_cast<int64_t>(u));
    }
    return out;
  }
  return WrongType(name_, key, **v, "array of integers");
}

}  // namespace pinfer
