#include "tools/convert/safetensors_file.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "format/strings.h"
#include "nlohmann/json.hpp"

namespace pinfer {
namespace {

// The safetensors library refuses headers above 100 MB; so do we (a bound on what we parse).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct SafetensorsDTypeInfo {
  std::string_view name;
  uint64_t bytes;
  std::optional<DType> dtype;
};
constexpr SafetensorsDTypeInfo kDTypes[] = {
    {"F32", 4, DType::kF32},   {"F16", 2, DType::kF16},      {"BF16", 2, DType::kBF16},
    {"F64", 8, std::nullopt},  {"I64", 8, std::nullopt},     {"U64", 8, std::nullopt},
    {"I32", 4, std::nullopt},  {"U32", 4, std::nullopt},     {"I16", 2, std::nullopt},
    {"U16", 2, std::nullopt},  {"I8", 1, std::nullopt},      {"U8", 1, std::nullopt},
    {"BOOL", 1, std::nullopt}, {"F8_E4M3", 1, std::nullopt}, {"F8_E5M2", 1, std::nullopt},
};

const SafetensorsDTypeInfo* FindDType(std::string_view name) {
  for (const SafetensorsDTypeInfo& d : kDTypes) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

// A JSON number that is a non-negative integer.
bool GetUnsigned(const nlohmann::json& j, uint64_t* out) {
  if (j.is_number_unsigned()) {
    *out = j.get<uint64_t>();
    return true;
  }
  if (j.is_number_integer() && j.get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(j.get<int64_t>());
    return true;
  }
  return false;
}

}  // namespace

std::optional<DType> SafetensorsDType(std::string_view name) {
  const SafetensorsDTypeInfo* d = FindDType(name);
  return d ? d->dtype : std::nullopt;
}

absl::StatusOr<SafetensorsFile> SafetensorsFile::Parse(std::span<const uint8_t> bytes,
                                                       std::string display_name) {
  SafetensorsFile file;
  file.name_ = std::move(display_name);
  file.bytes_ = bytes;
  const std::string& name = file.name_;
  auto corrupt = [&name](auto&&... parts) {
    return absl::DataLossError(absl::StrCat(name, ": ", parts...));
  };
  uint64_t header_size;
  if (bytes.size() < sizeof(header_size)) return corrupt("truncated: no safetensors header");
  std::memcpy(&header_size, bytes.data(), sizeof(header_size));
  if (header_size > kMaxHeaderBytes) {
    return corrupt("not a safetensors file (header length ", header_size, " is implausible)");
  }
  if (header_size > bytes.size() - sizeof(header_size)) {
    return corrupt("truncated: the ", header_size, "-byte header runs past the end of the file");
  }
  const char* header = reinterpret_cast<const char*>(bytes.data() + sizeof(header_size));
  if (header_size == 0 || header[0] != '{') {
    return corrupt("not a safetensors file (the header is not a JSON object)");
  }
  nlohmann::json json = nlohmann::json::parse(header, header + header_size, /*cb=*/nullptr,
                                              /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return corrupt("the safetensors header is not valid JSON");
  }
  const uint64_t data_start = sizeof(header_size) + header_size;
  const uint64_t data_size = bytes.size() - data_start;

  for (const auto& item : json.items()) {
    // (Not a structured binding: clang 14 cannot capture one in the lambda below.)
    const std::string& key = item.key();
    const nlohmann::json& entry = item.value();
    if (key == "__metadata__") {
      if (!entry.is_object()) return corrupt("__metadata__ is not an object");
      for (const auto& [meta_key, meta_value] : entry.items()) {
        if (!meta_value.is_string()) {
          return corrupt("__metadata__ '", meta_key, "' is not a string");
        }
        file.metadata_[meta_key] = meta_value.get<std::string>();
      }
      continue;
    }
    auto bad = [&](auto&&... parts) { return corrupt("tensor '", key, "' ", parts...); };
    if (!entry.is_object()) return bad("is not an object");
    auto dtype_it = entry.find("dtype");
    auto shape_it = entry.find("shape");
    auto offsets_it = entry.find("data_offsets");
    if (dtype_it == entry.end() || shape_it == entry.end() || offsets_it == entry.end()) {
      return bad("lacks dtype, shape or data_offsets");
    }
    if (!dtype_it->is_string()) return bad("has a dtype that is not a string");
    SafetensorsTensor t;
    t.name = key;
    t.dtype = dtype_it->get<std::string>();
    const SafetensorsDTypeInfo* dtype = FindDType(t.dtype);
    if (dtype == nullptr) return bad("has unknown dtype '", t.dtype, "'");
    if (!shape_it->is_array() || shape_it->size() > 8) return bad("has an invalid shape");
    uint64_t elements = 1;
    for (const nlohmann::json& d : *shape_it) {
      uint64_t dim;
      if (!GetUnsigned(d, &dim)) return bad("has an invalid shape");
      if (dim != 0 && elements > std::numeric_limits<uint64_t>::max() / dim) {
        return bad("is too large");
      }
      elements *= dim;
      t.shape.push_back(dim);
    }
    uint64_t begin, end;
    if (!offsets_it->is_array() || offsets_it->size() != 2 ||
        !GetUnsigned((*offsets_it)[0], &begin) || !GetUnsigned((*offsets_it)[1], &end) ||
        begin > end) {
      return bad("has invalid data_offsets");
    }
    if (elements > std::numeric_limits<uint64_t>::max() / dtype->bytes ||
        elements * dtype->bytes != end - begin) {
      return bad("holds ", end - begin, " bytes but ", t.dtype, " ", elements, " elements need ",
                 elements * dtype->bytes);
    }
    if (end > data_size) {
      return corrupt("truncated: tensor '", key, "' ends at data byte ", end, ", the file has ",
                     data_size);
    }
    t.offset = data_start + begin;
    t.size = end - begin;
    file.tensors_.emplace(key, std::move(t));
  }

  std::vector<const SafetensorsTensor*> by_offset;
  for (const auto& [key, t] : file.tensors_) {
    if (t.size > 0) by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const auto* a, const auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i - 1]->offset + by_offset[i - 1]->size > by_offset[i]->offset) {
      return corrupt("tensors '", by_offset[i - 1]->name, "' and '", by_offset[i]->name,
                     "' overlap");
    }
  }
  return file;
}

const SafetensorsTensor* SafetensorsFile::Find(std::string_view name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

}  // namespace pinfer
