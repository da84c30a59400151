#include "tests/synth/gguf_test_reader.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "format/byte_io.h"
#include "format/dtype.h"

namespace pinfer::synth::testing {
namespace {

// Sizes of the ggml types the writer emits: (block elements, block bytes).
bool TypeSize(uint32_t type, uint64_t* block_elements, uint64_t* block_bytes) {
  switch (type) {
    case 0:
      *block_elements = 1;
      *block_bytes = 4;
      return true;  // f32
    case 1:
      *block_elements = 1;
      *block_bytes = 2;
      return true;  // f16
    case 30:
      *block_elements = 1;
      *block_bytes = 2;
      return true;  // bf16
    case 2:
      *block_elements = 32;
      *block_bytes = 18;
      return true;  // q4_0
    case 8:
      *block_elements = 32;
      *block_bytes = 34;
      return true;  // q8_0
    default:
      return false;
  }
}

bool ReadString(ByteReader& r, std::string* out) { return r.GetLongString(out); }

// Reads one scalar of `type` into a widened value.
bool ReadScalar(ByteReader& r, uint32_t type, GgufTestValue* out) {
  switch (type) {
    case 0: {
      uint8_t v;
      if (!r.Get(&v)) return false;
      *out = uint64_t{v};
      return true;
    }
    case 1: {
      int8_t v;
      if (!r.Get(&v)) return false;
      *out = int64_t{v};
      return true;
    }
    case 2: {
      uint16_t v;
      if (!r.Get(&v)) return false;
      *out = uint64_t{v};
      return true;
    }
    case 3: {
      int16_t v;
      if (!r.Get(&v)) return false;
      *out = int64_t{v};
      return true;
    }
    case 4: {
      uint32_t v;
      if (!r.Get(&v)) return false;
      *out = uint64_t{v};
      return true;
    }
    case 5: {
      int32_t v;
      if (!r.Get(&v)) return false;
      *out = int64_t{v};
      return true;
    }
    case 6: {
      float v;
      if (!r.Get(&v)) return false;
      *out = double{v};
      return true;
    }
    case 7: {
      uint8_t v;
      if (!r.Get(&v) || v > 1) return false;
      *out = v == 1;
      return true;
    }
    case 8: {
      std::string v;
      if (!ReadString(r, &v)) return false;
      *out = std::move(v);
      return true;
    }
    case 10: {
      uint64_t v;
      if (!r.Get(&v)) return false;
      *out = v;
      return true;
    }
    case 11: {
      int64_t v;
      if (!r.Get(&v)) return false;
      *out = v;
      return true;
    }
    case 12: {
      double v;
      if (!r.Get(&v)) return false;
      *out = v;
      return true;
    }
    default:
      return false;
  }
}

bool ReadValue(ByteReader& r, uint32_t type, GgufTestValue* out) {
  if (type != 9) return ReadScalar(r, type, out);
  uint32_t element_type;
  uint64_t count;
  if (!r.Get(&element_type) || !r.Get(&count) || count > r.remaining()) return false;
  std::vector<std::string> strings;
  std::vector<double> floats;
  std::vector<int64_t> ints;
  for (uint64_t i = 0; i < count; ++i) {
    GgufTestValue v;
    if (!ReadScalar(r, element_type, &v)) return false;
    if (auto* s = std::get_if<std::string>(&v))
      strings.push_back(*s);
    else if (auto* d = std::get_if<double>(&v))
      floats.push_back(*d);
    else if (auto* n = std::get_if<int64_t>(&v))
      ints.push_back(*n);
    else if (auto* u = std::get_if<uint64_t>(&v))
      ints.push_back(static_cast<int64_t>(*u));
    else
      return false;
  }
  if (element_type == 8)
    *out = std::move(strings);
  else if (element_type == 6 || element_type == 12)
    *out = std::move(floats);
  else
    *out = std::move(ints);
  return true;
}

}  // namespace

const GgufTestTensor* GgufTestFile::Find(const std::string& name) const {
  for (const GgufTestTensor& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

absl::StatusOr<GgufTestFile> ReadGgufForTest(const std::string& path) {
  GgufTestFile file;
  absl::StatusOr<std::unique_ptr<MappedFile>> mapping = MappedFile::Open(path);
  if (!mapping.ok()) return mapping.status();
  file.mapping = *std::move(mapping);
  std::span<const uint8_t> bytes = file.mapping->bytes();
  auto corrupt = [&](const std::string& why) {
    return absl::DataLossError(absl::StrCat(path, ": ", why));
  };
  ByteReader r(bytes);
  std::span<const uint8_t> magic;
  if (!r.GetSpan(4, &magic) || std::memcmp(magic.data(), "GGUF", 4) != 0)
    return corrupt("bad magic");
  uint64_t tensor_count, kv_count;
  if (!r.Get(&file.version) || !r.Get(&tensor_count) || !r.Get(&kv_count))
    return corrupt("short header");
  for (uint64_t i = 0; i < kv_count; ++i) {
    std::string key;
    uint32_t type;
    GgufTestValue value;
    if (!ReadString(r, &key) || !r.Get(&type) || !ReadValue(r, type, &value)) {
      return corrupt(absl::StrCat("bad metadata entry ", i));
    }
    if (!file.metadata.emplace(key, std::move(value)).second)
      return corrupt("duplicate key " + key);
  }
  uint64_t alignment = 32;
  if (auto it = file.metadata.find("general.alignment"); it != file.metadata.end()) {
    alignment = std::get<uint64_t>(it->second);
  }
  for (uint64_t i = 0; i < tensor_count; ++i) {
    GgufTestTensor t;
    uint32_t n_dims;
    if (!ReadString(r, &t.name) || !r.Get(&n_dims) || n_dims == 0 || n_dims > 4) {
      return corrupt(absl::StrCat("bad tensor info ", i));
    }
    t.ne.resize(n_dims);
    for (uint64_t& d : t.ne) {
      if (!r.Get(&d)) return corrupt("truncated tensor info");
    }
    if (!r.Get(&t.type) || !r.Get(&t.relative_offset)) return corrupt("truncated tensor info");
    if (t.relative_offset % alignment != 0) return corrupt(t.name + " is misaligned");
    file.tensors.push_back(std::move(t));
  }
  file.data_offset = (r.position() + alignment - 1) / alignment * alignment;
  for (GgufTestTensor& t : file.tensors) {
    uint64_t block_elements, block_bytes;
    if (!TypeSize(t.type, &block_elements, &block_bytes)) return corrupt(t.name + ": unknown type");
    if (t.ne[0] % block_elements != 0) return corrupt(t.name + ": rows are not whole blocks");
    uint64_t size = t.ne[0] / block_elements * block_bytes;
    for (size_t d = 1; d < t.ne.size(); ++d) size *= t.ne[d];
    const uint64_t offset = file.data_offset + t.relative_offset;
    if (offset > bytes.size() || size > bytes.size() - offset)
      return corrupt(t.name + " is outside the file");
    t.data = bytes.subspan(offset, size);
  }
  return file;
}

}  // namespace pinfer::synth::testing
