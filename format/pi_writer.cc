#include "format/pi_writer.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "format/strings.h"
#include "format/byte_io.h"

namespace pinfer {
namespace {

uint64_t AlignUp(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PiWriter>> PiWriter::Create(const std::string& path,
                                                           ArtifactKind kind, Metadata metadata,
                                                           std::vector<TensorSpec> tensors) {
  auto writer = std::unique_ptr<PiWriter>(new PiWriter());
  writer->kind_ = kind;
  writer->metadata_ = std::move(metadata);
  ByteWriter metadata_bytes;
  writer->metadata_.Serialize(metadata_bytes);
  writer->metadata_bytes_ = std::move(metadata_bytes.bytes());

  writer->slots_.resize(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    Slot& slot = writer->slots_[i];
    slot.spec = std::move(tensors[i]);
    if (slot.spec.name.empty() || slot.spec.name.size() > UINT16_MAX) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": tensor ", i, " has an invalid name"));
    }
    if (slot.spec.shape.empty() || slot.spec.shape.size() > kPiMaxDims) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor '", slot.spec.name, "' needs 1 to ", kPiMaxDims, " dimensions"));
    }
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
  // The index has a fixed size (checksums are fixed-width), so the layout is known now.
  writer->index_size_ = writer->SerializeIndex().size();
  uint64_t offset = kPiHeaderSize + writer->metadata_bytes_.size() + writer->index_size_;
  writer->data_offset_ = AlignUp(offset, kPiTensorAlignment);
  offset = writer->data_offset_;
  for (Slot& slot : writer->slots_) {
    offset = AlignUp(offset, slot.size >= kPiPageAlignThreshold ? kPiPageAlignment : kPiTensorAlignment);
    slot.offset = offset;
    offset += slot.size;
  }
  writer->file_size_ = offset;

  absl::StatusOr<std::unique_ptr<AtomicFile>> file = AtomicFile::Create(path);
  if (!file.ok()) return file.status();
  writer->file_ = *std::move(file);
  // Reserve the full size up front: gaps between tensors read back as zeros.
  if (absl::Status s = writer->file_->Truncate(writer->file_size_); !s.ok()) return s;
  return writer;
}

std::vector<uint8_t> PiWriter::SerializeIndex() const {
  ByteWriter index;
  for (const Slot& slot : slots_) {
    index.PutShortString(slot.spec.name);
    index.Put<uint32_t>(static_cast<uint32_t>(slot.spec.dtype));
    index.Put<uint32_t>(static_cast<uint32_t>(slot.spec.shape.size()));
    for (uint64_t d : slot.spec.shape) index.Put(d);
    index.Put(slot.offset);
    index.Put(slot.size);
    index.Put(slot.checksum.Digest());
  }
  return std::move(index.bytes());
}

absl::Status PiWriter::Append(std::string_view name, std::span<const uint8_t> bytes) {
  auto it = by_name_.find(Sv(name));
  if (it == by_name_.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file_->path(), ": tensor '", Sv(name), "' was not declared"));
  }
  Slot& slot = slots_[it->second];
  if (bytes.size() > slot.size - slot.written) {
    return absl::InvalidArgumentError(absl::StrCat(file_->path(), ": too many bytes for tensor '", Sv(name),
                                                   "' (", slot.size, " expected)"));
  }
  if (absl::Status s = file_->WriteAt(slot.offset + slot.written, bytes); !s.ok()) return s;
  slot.checksum.Update(bytes);
  slot.written += bytes.size();
  return absl::OkStatus();
}

absl::Status PiWriter::Write(std::string_view name, const void* data, size_t size) {
  auto it = by_name_.find(Sv(name));
  if (it != by_name_.end() && slots_[it->second].size != size) {
    return absl::InvalidArgumentError(absl::StrCat(file_->path(), ": tensor '", Sv(name), "' needs ",
                                                   slots_[it->second].size, " bytes, got ", size));
  }
  return Append(name, data, size);
}

absl::Status PiWriter::Commit() {
  for (const Slot& slot : slots_) {
    if (slot.written != slot.size) {
      return absl::FailedPreconditionError(absl::StrCat(file_->path(), ": tensor '", slot.spec.name,
                                                        "' is incomplete (", slot.written, " of ",
                                                        slot.size, " bytes written)"));
    }
  }
  std::vector<uint8_t> index = SerializeIndex();
  PiHeader header{};
  std::memcpy(header.magic, kPiMagic, sizeof(kPiMagic));
  header.version_major = kPiVersionMajor;
  header.version_minor = kPiVersionMinor;
  header.kind = static_cast<uint32_t>(kind_);
  header.tensor_alignment = kPiTensorAlignment;
  header.metadata_offset = kPiHeaderSize;
  header.metadata_size = metadata_bytes_.size();
  header.index_offset = kPiHeaderSize + metadata_bytes_.size();
  header.index_size = index.size();
  header.data_offset = data_offset_;
  header.file_size = file_size_;
  header.metadata_count = static_cast<uint32_t>(metadata_.size());
  header.tensor_count = static_cast<uint32_t>(slots_.size());
  StreamingChecksum checksum;
  checksum.Update(&header, offsetof(PiHeader, header_checksum));
  checksum.Update(metadata_bytes_);
  checksum.Update(index);
  header.header_checksum = checksum.Digest();

  const auto* header_bytes = reinterpret_cast<const uint8_t*>(&header);
  if (absl::Status s = file_->WriteAt(0, {header_bytes, sizeof(header)}); !s.ok()) return s;
  if (absl::Status s = file_->WriteAt(header.metadata_offset, metadata_bytes_); !s.ok()) return s;
  if (absl::Status s = file_->WriteAt(header.index_offset, index); !s.ok()) return s;
  return file_->Commit();
}

absl::Status WritePiFile(const std::string& path, ArtifactKind kind, Metadata metadata,
                         const std::vector<TensorData>& tensors) {
  std::vector<TensorSpec> specs;
  specs.reserve(tensors.size());
  for (const TensorData& t : tensors) specs.push_back(t.spec);
  absl::StatusOr<std::unique_ptr<PiWriter>> writer =
      PiWriter::Create(path, kind, std::move(metadata), std::move(specs));
  if (!writer.ok()) return writer.status();
  for (const TensorData& t : tensors) {
    if (absl::Status s = (*writer)->Write(t.spec.name, t.bytes.data(), t.bytes.size()); !s.ok()) {
      return s;
    }
  }
  return (*writer)->Commit();
}

namespace {

template <typename T>
TensorData MakeTyped(std::string name, std::vector<uint64_t> shape, DType dtype,
                     std::span<const T> values) {
  TensorData t;
  t.spec = {std::move(name), dtype, std::move(shape)};
  t.bytes.resize(values.size_bytes());
  std::memcpy(t.bytes.data(), values.data(), values.size_bytes());
  return t;
}

}  // namespace

TensorData MakeTensor(std::string name, std::vector<uint64_t> shape, std::span<const float> values) {
  return MakeTyped(std::move(name), std::move(shape), DType::kF32, values);
}
TensorData MakeTensor(std::string name, std::vector<uint64_t> shape,
                      std::span<const int32_t> values) {
  return MakeTyped(std::move(name), std::move(shape), DType::kI32, values);
}
TensorData MakeTensor(std::string name, std::vector<uint64_t> shape,
                      std::span<const uint8_t> values) {
  return MakeTyped(std::move(name), std::move(shape), DType::kU8, values);
}

}  // namespace pinfer
