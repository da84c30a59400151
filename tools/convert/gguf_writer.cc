#include "tools/convert/gguf_writer.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "format/byte_io.h"
#include "format/quant.h"
#include "format/strings.h"
#include "tools/convert/gguf_file.h"  // GgufValueType: the wire values the reader checks

namespace pinfer {
namespace {

uint64_t AlignUp(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

void PutString(ByteWriter& out, std::string_view s) {
  out.Put<uint64_t>(s.size());
  out.PutBytes(s.data(), s.size());
}

// A value's bytes, starting with its type. (The reserve also keeps GCC 12 from a false
// -Wstringop-overflow on inserting into an empty vector.)
ByteWriter Typed(GgufValueType type) {
  ByteWriter out;
  out.bytes().reserve(64);
  out.Put(static_cast<uint32_t>(type));
  return out;
}

template <typename T>
std::vector<uint8_t> Scalar(GgufValueType type, T value) {
  ByteWriter out = Typed(type);
  out.Put(value);
  return std::move(out.bytes());
}

template <typename T>
std::vector<uint8_t> Array(GgufValueType element_type, std::span<const T> values) {
  ByteWriter out = Typed(GgufValueType::kArray);
  out.Put(static_cast<uint32_t>(element_type));
  out.Put<uint64_t>(values.size());
  out.PutBytes(values.data(), values.size_bytes());
  return std::move(out.bytes());
}

}  // namespace

absl::StatusOr<GgmlType> GgmlTypeFor(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return GgmlType::kF32;
    case DType::kF16:
      return GgmlType::kF16;
    case DType::kBF16:
      return GgmlType::kBF16;
    case DType::kQ8_0:
      return GgmlType::kQ8_0;
    case DType::kQ4_0:
      return GgmlType::kQ4_0;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("dtype ", Sv(DTypeName(dtype)), " has no GGUF tensor type"));
  }
}

void GgufMetadata::SetUint32(std::string_view key, uint32_t value) {
  entries_.insert_or_assign(std::string(key), Scalar(GgufValueType::kUint32, value));
}
void GgufMetadata::SetInt32(std::string_view key, int32_t value) {
  entries_.insert_or_assign(std::string(key), Scalar(GgufValueType::kInt32, value));
}
void GgufMetadata::SetUint64(std::string_view key, uint64_t value) {
  entries_.insert_or_assign(std::string(key), Scalar(GgufValueType::kUint64, value));
}
void GgufMetadata::SetFloat32(std::string_view key, float value) {
  entries_.insert_or_assign(std::string(key), Scalar(GgufValueType::kFloat32, value));
}
void GgufMetadata::SetBool(std::string_view key, bool value) {
  entries_.insert_or_assign(std::string(key),
                            Scalar(GgufValueType::kBool, static_cast<uint8_t>(value)));
}
void GgufMetadata::SetString(std::string_view key, std::string_view value) {
  ByteWriter out = Typed(GgufValueType::kString);
  PutString(out, value);
  entries_.insert_or_assign(std::string(key), std::move(out.bytes()));
}
void GgufMetadata::SetStringArray(std::string_view key, std::span<const std::string> values) {
  ByteWriter out = Typed(GgufValueType::kArray);
  out.Put(static_cast<uint32_t>(GgufValueType::kString));
  out.Put<uint64_t>(values.size());
  for (const std::string& v : values) PutString(out, v);
  entries_.insert_or_assign(std::string(key), std::move(out.bytes()));
}
void GgufMetadata::SetFloat32Array(std::string_view key, std::span<const float> values) {
  entries_.insert_or_assign(std::string(key), Array(GgufValueType::kFloat32, values));
}
void GgufMetadata::SetInt32Array(std::string_view key, std::span<const int32_t> values) {
  entries_.insert_or_assign(std::string(key), Array(GgufValueType::kInt32, values));
}

void GgufMetadata::Serialize(std::vector<uint8_t>& out) const {
  for (const auto& [key, value] : entries_) {
    const uint64_t length = key.size();
    const auto* p = reinterpret_cast<const uint8_t*>(&length);
    out.insert(out.end(), p, p + sizeof(length));
    out.insert(out.end(), key.begin(), key.end());
    out.insert(out.end(), value.begin(), value.end());
  }
}

absl::StatusOr<std::unique_ptr<GgufWriter>> GgufWriter::Create(const std::string& path,
                                                               const GgufMetadata& metadata,
                                                               std::vector<TensorSpec> tensors,
                                                               GgufMagic magic) {
  auto writer = std::unique_ptr<GgufWriter>(new GgufWriter());
  ByteWriter head;
  head.bytes().reserve(1 << 16);
  head.PutBytes(magic == GgufMagic::kPowerInfer ? "PWRI" : "GGUF", 4);
  head.Put<uint32_t>(kGgufVersion);
  head.Put<uint64_t>(tensors.size());
  head.Put<uint64_t>(metadata.size());
  metadata.Serialize(head.bytes());

  writer->slots_.resize(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    Slot& slot = writer->slots_[i];
    slot.spec = std::move(tensors[i]);
    absl::StatusOr<GgmlType> type = GgmlTypeFor(slot.spec.dtype);
    if (!type.ok())
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", type.status().message()));
    absl::StatusOr<uint64_t> size = TensorBytes(slot.spec.dtype, slot.spec.shape);
    if (!size.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor '", slot.spec.name, "': ", size.status().message()));
    }
    slot.size = *size;
    if (!writer->by_name_.emplace(slot.spec.name, i).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor '", slot.spec.name, "' is declared twice"));
    }
  }
  // Relative offsets are fixed by the sizes alone, so the index can be written now.
  uint64_t relative = 0;
  for (Slot& slot : writer->slots_) {
    relative = AlignUp(relative, kGgufAlignment);
    slot.offset = relative;
    relative += slot.size;
    PutString(head, slot.spec.name);
    head.Put<uint32_t>(static_cast<uint32_t>(slot.spec.shape.size()));
    for (auto d = slot.spec.shape.rbegin(); d != slot.spec.shape.rend(); ++d)
      head.Put<uint64_t>(*d);
    head.Put(static_cast<uint32_t>(*GgmlTypeFor(slot.spec.dtype)));
    head.Put<uint64_t>(slot.offset);
  }
  head.PadTo(kGgufAlignment);
  const uint64_t data_offset = head.size();
  for (Slot& slot : writer->slots_) slot.offset += data_offset;
  writer->file_size_ = data_offset + relative;

  absl::StatusOr<std::unique_ptr<AtomicFile>> file = AtomicFile::Create(path);
  if (!file.ok()) return file.status();
  writer->file_ = *std::move(file);
  // Padding between tensors reads back as zeros.
  if (absl::Status s = writer->file_->Truncate(writer->file_size_); !s.ok()) return s;
  if (absl::Status s = writer->file_->WriteAt(0, head.bytes()); !s.ok()) return s;
  return writer;
}

absl::Status GgufWriter::Append(std::string_view name, std::span<const uint8_t> bytes) {
  auto it = by_name_.find(Sv(name));
  if (it == by_name_.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file_->path(), ": tensor '", Sv(name), "' was not declared"));
  }
  Slot& slot = slots_[it->second];
  if (bytes.size() > slot.size - slot.written) {
    return absl::InvalidArgumentError(absl::StrCat(file_->path(), ": too many bytes for tensor '",
                                                   Sv(name), "' (", slot.size, " expected)"));
  }
  if (absl::Status s = file_->WriteAt(slot.offset + slot.written, bytes); !s.ok()) return s;
  slot.written += bytes.size();
  return absl::OkStatus();
}

absl::Status GgufWriter::Commit() {
  for (const Slot& slot : slots_) {
    if (slot.written != slot.size) {
      return absl::FailedPreconditionError(absl::StrCat(file_->path(), ": tensor '", slot.spec.name,
                                                        "' is incomplete (", slot.written, " of ",
                                                        slot.size, " bytes written)"));
    }
  }
  return file_->Commit();
}

absl::StatusOr<DType> GgufDTypeFor(DType pi_dtype) {
  if (pi_dtype == DType::kQ4_0x16) return DType::kQ4_0;
  if (absl::StatusOr<GgmlType> type = GgmlTypeFor(pi_dtype); !type.ok()) return type.status();
  return pi_dtype;
}

absl::Status AppendPiTensor(GgufWriter& writer, std::string_view gguf_name, DType pi_dtype,
                            int64_t cols, std::span<const uint8_t> pi_bytes) {
  absl::StatusOr<DType> gguf_dtype = GgufDTypeFor(pi_dtype);
  if (!gguf_dtype.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", Sv(gguf_name), "': ", gguf_dtype.status().message()));
  }
  if (pi_dtype != DType::kQ4_0x16) return writer.Append(gguf_name, pi_bytes);
  // One row group at a time: a classifier is hundreds of MB, and the writer streams.
  absl::StatusOr<uint64_t> row_bytes = RowBytes(pi_dtype, static_cast<uint64_t>(cols));
  if (!row_bytes.ok() || *row_bytes == 0 || pi_bytes.size() % *row_bytes != 0) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", Sv(gguf_name), "': ",
                                                   pi_bytes.size(), " bytes are not rows of ",
                                                   cols, " q4_0x16 elements"));
  }
  const size_t rows = pi_bytes.size() / *row_bytes;
  const size_t rows_per_chunk = std::max<size_t>(1, (4u << 20) / *row_bytes);
  std::vector<uint8_t> q4_0(std::min(rows, rows_per_chunk) * *row_bytes);
  for (size_t r = 0; r < rows; r += rows_per_chunk) {
    const size_t n = std::min(rows_per_chunk, rows - r);
    ConvertQ4_0x16ToQ4_0(pi_bytes.data() + r * *row_bytes, q4_0.data(), n,
                         static_cast<size_t>(cols));
    if (absl::Status s = writer.Append(gguf_name, std::span(q4_0.data(), n * *row_bytes));
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

void AddGgufTokenizer(const Vocabulary& v, GgufMetadata& m) {
  m.SetString("tokenizer.ggml.model", v.byte_level() ? "gpt2" : "llama");
  m.SetStringArray("tokenizer.ggml.tokens", v.pieces);
  if (v.byte_level()) {
    m.SetStringArray("tokenizer.ggml.merges", v.merges);
    if (!v.pre_tokenizer.empty()) m.SetString("tokenizer.ggml.pre", v.pre_tokenizer);
  } else {
    m.SetFloat32Array("tokenizer.ggml.scores", v.scores);
  }
  m.SetInt32Array("tokenizer.ggml.token_type", v.types);
  m.SetUint32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(v.bos_id));
  m.SetUint32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(v.eos_id));
  if (v.unk_id >= 0) {
    m.SetUint32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(v.unk_id));
  }
  if (v.pad_id >= 0) {
    m.SetUint32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(v.pad_id));
  }
  m.SetBool("tokenizer.ggml.add_bos_token", v.add_bos);
  m.SetBool("tokenizer.ggml.add_eos_token", false);
  if (!v.byte_level()) m.SetBool("tokenizer.ggml.add_space_prefix", v.add_space_prefix);
  if (!v.chat_template.empty()) m.SetString("tokenizer.chat_template", v.chat_template);
}

void AddGgufCommonHparams(const std::string& arch, const ModelConfig& c, GgufMetadata& m) {
  m.SetString("general.architecture", arch);
  m.SetString("general.name", c.name);
  m.SetUint32(arch + ".context_length", static_cast<uint32_t>(c.context_length));
  m.SetUint32(arch + ".embedding_length", static_cast<uint32_t>(c.dim));
  m.SetUint32(arch + ".block_count", static_cast<uint32_t>(c.n_layers));
  m.SetUint32(arch + ".feed_forward_length", static_cast<uint32_t>(c.n_ff));
  m.SetUint32(arch + ".attention.head_count", static_cast<uint32_t>(c.n_heads));
  m.SetUint32(arch + ".attention.head_count_kv", static_cast<uint32_t>(c.n_kv_heads));
}

GgufMetadata LlamaGgufMetadata(const ModelConfig& c, const Vocabulary& v) {
  GgufMetadata m;
  AddGgufCommonHparams("llama", c, m);
  m.SetUint32("llama.rope.dimension_count", static_cast<uint32_t>(c.head_dim));
  if (c.head_dim * c.n_heads != c.dim) {
    m.SetUint32("llama.attention.key_length", static_cast<uint32_t>(c.head_dim));
    m.SetUint32("llama.attention.value_length", static_cast<uint32_t>(c.head_dim));
  }
  m.SetFloat32("llama.attention.layer_norm_rms_epsilon", static_cast<float>(c.rms_eps));
  m.SetFloat32("llama.rope.freq_base", static_cast<float>(c.rope_theta));
  m.SetUint32("llama.vocab_size", static_cast<uint32_t>(c.vocab_size));
  AddGgufTokenizer(v, m);
  return m;
}

}  // namespace pinfer
