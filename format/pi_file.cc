#include "format/pi_file.h"


#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "format/strings.h"
#include "absl/strings/str_join.h"
#include "format/byte_io.h"
#include "format/checksum.h"
#include "format/mapped_file.h"

namespace pinfer {

uint64_t TensorInfo::elements() const {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;
  return n;
}

uint64_t TensorInfo::rows() const {
  uint64_t n = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i) n *= shape[i];
  return n;
}

std::string TensorInfo::ShapeString() const { return absl::StrCat("[", absl::StrJoin(shape, ", "), "]"); }

absl::StatusOr<std::unique_ptr<PiFile>> PiFile::Open(const std::string& path,
                                                     const PiOpenOptions& options) {
  absl::StatusOr<std::unique_ptr<MappedFile>> mapped = MappedFile::Open(path, options.populate);
  if (!mapped.ok()) return mapped.status();
  auto file = std::unique_ptr<PiFile>(new PiFile());
  file->path_ = path;
  file->base_ = (*mapped)->data();
  file->size_ = (*mapped)->size();
  file->mapping_ = *std::move(mapped);
  if (file->size_ < kPiHeaderSize) {
    return absl::DataLossError(absl::StrCat(path, ": truncated: ", file->size_,
                                            " bytes is smaller than the ", kPiHeaderSize,
                                            "-byte .pi header"));
  }
  if (absl::Status s = file->Parse(options); !s.ok()) return s;
  return file;
}

absl::StatusOr<std::unique_ptr<PiFile>> PiFile::FromBytes(std::span<const uint8_t> bytes,
                                                          std::string display_name,
                                                          const PiOpenOptions& options) {
  auto file = std::unique_ptr<PiFile>(new PiFile());
  file->path_ = std::move(display_name);
  file->base_ = bytes.data();
  file->size_ = bytes.size();
  if (file->size_ < kPiHeaderSize) {
    return absl::DataLossError(absl::StrCat(file->path_, ": truncated: ", file->size_,
                                            " bytes is smaller than the ", kPiHeaderSize,
                                            "-byte .pi header"));
  }
  if (absl::Status s = file->Parse(options); !s.ok()) return s;
  return file;
}

PiFile::~PiFile() = default;

absl::Status PiFile::Corrupt(std::string_view reason) const {
  return absl::DataLossError(absl::StrCat(path_, ": ", Sv(reason)));
}

absl::Status PiFile::Annotate(const absl::Status& status) const {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(path_, ": ", status.message()));
}

absl::Status PiFile::Parse(const PiOpenOptions& options) {
  std::memcpy(&header_, base_, sizeof(header_));
  if (std::memcmp(header_.magic, kPiMagic, sizeof(kPiMagic)) != 0) {
    return Corrupt("not a .pi file (wrong magic)");
  }
  if (header_.version_major != kPiVersionMajor) {
    return absl::FailedPreconditionError(absl::StrCat(
        path_, ": .pi format version ", header_.version_major, ".", header_.version_minor,
        " is not supported (this build reads version ", kPiVersionMajor, ".x)"));
  }
  std::optional<ArtifactKind> kind = ArtifactKindFromRaw(header_.kind);
  if (!kind) return Corrupt(absl::StrCat("unknown artifact kind ", header_.kind));
  kind_ = *kind;
  if (options.expected_kind && *options.expected_kind != kind_) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": is a ", Sv(ArtifactKindName(kind_)),
                                                   " artifact, expected a ",
                                                   Sv(ArtifactKindName(*options.expected_kind))));
  }
  if (header_.file_size != size_) {
    return Corrupt(absl::StrCat(header_.file_size > size_ ? "truncated" : "has trailing bytes",
                                ": the header records ", header_.file_size, " bytes, the file has ",
                                size_));
  }
  if (header_.tensor_alignment < kPiTensorAlignment ||
      (header_.tensor_alignment & (header_.tensor_alignment - 1)) != 0) {
    return Corrupt(absl::StrCat("invalid tensor alignment ", header_.tensor_alignment));
  }
  // Regions: header | metadata | index | ... | data. Sizes are checked before they are added.
  if (header_.metadata_offset != kPiHeaderSize || header_.metadata_size > size_ ||
      header_.index_offset != header_.metadata_offset + header_.metadata_size ||
      header_.index_offset > size_ || header_.index_size > size_ - header_.index_offset ||
      header_.data_offset < header_.index_offset + header_.index_size ||
      header_.data_offset > size_) {
    return Corrupt("header regions (metadata, index, data) are out of bounds or out of order");
  }
  // The header checksum covers the header (without the checksum field), the metadata and the
  // index, so that any damage to the structure is caught before it is interpreted.
  StreamingChecksum checksum;
  checksum.Update(base_, offsetof(PiHeader, header_checksum));
  checksum.Update(base_ + header_.metadata_offset, header_.metadata_size + header_.index_size);
  if (checksum.Digest() != header_.header_checksum) {
    return Corrupt("header checksum mismatch (the header, metadata or tensor index is damaged)");
  }

  ByteReader metadata_reader({base_ + header_.metadata_offset, header_.metadata_size});
  absl::StatusOr<Metadata> metadata = Metadata::Parse(metadata_reader, header_.metadata_count);
  if (!metadata.ok()) return Corrupt(StdSv(metadata.status().message()));
  if (metadata_reader.remaining() != 0) return Corrupt("metadata region has trailing bytes");
  metadata_ = *std::move(metadata);

  ByteReader index({base_ + header_.index_offset, header_.index_size});
  if (header_.tensor_count > header_.index_size / 32) {
    return Corrupt(absl::StrCat("tensor count ", header_.tensor_count, " does not fit the index"));
  }
  tensors_.resize(header_.tensor_count);
  for (uint32_t i = 0; i < header_.tensor_count; ++i) {
    TensorInfo& t = tensors_[i];
    uint32_t raw_dtype, n_dims;
    if (!index.GetShortString(&t.name) || !index.Get(&raw_dtype) || !index.Get(&n_dims)) {
      return Corrupt(absl::StrCat("tensor index entry ", i, " is truncated"));
    }
    if (t.name.empty()) return Corrupt(absl::StrCat("tensor index entry ", i, " has an empty name"));
    if (!IsKnownDType(raw_dtype)) {
      return Corrupt(absl::StrCat("tensor '", t.name, "' has unsupported dtype ", raw_dtype));
    }
    t.dtype = static_cast<DType>(raw_dtype);
    if (n_dims == 0 || n_dims > kPiMaxDims) {
      return Corrupt(absl::StrCat("tensor '", t.name, "' has ", n_dims, " dimensions (1 to ",
                                  kPiMaxDims, " allowed)"));
    }
    t.shape.resize(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) {
      if (!index.Get(&t.shape[d])) return Corrupt(absl::StrCat("tensor '", t.name, "' is truncated"));
    }
    if (!index.Get(&t.offset) || !index.Get(&t.size) || !index.Get(&t.checksum)) {
      return Corrupt(absl::StrCat("tensor '", t.name, "' index entry is truncated"));
    }
    absl::StatusOr<uint64_t> expected = TensorBytes(t.dtype, t.shape);
    if (!expected.ok()) {
      return Corrupt(absl::StrCat("tensor '", t.name, "' ", t.ShapeString(), ": ",
                                  expected.status().message()));
    }
    if (*expected != t.size) {
      return Corrupt(absl::StrCat("tensor '", t.name, "' has size ", t.size, " but ",
                                  Sv(DTypeName(t.dtype)), " ", t.ShapeString(), " needs ", *expected));
    }
    if (t.offset % kPiTensorAlignment != 0) {
      return Corrupt(absl::StrCat("tensor '", t.name, "' offset ", t.offset, " is not ",
                                  kPiTensorAlignment, "-byte aligned"));
    }
    if (t.offset < header_.data_offset || t.offset > size_ || t.size > size_ - t.offset) {
      return Corrupt(absl::StrCat("tensor '", t.name, "' (offset ", t.offset, ", ", t.size,
                                  " bytes) lies outside the data region"));
    }
    if (!by_name_.emplace(t.name, i).second) {
      return Corrupt(absl::StrCat("tensor '", t.name, "' appears twice"));
    }
  }
  if (index.remaining() != 0) return Corrupt("tensor index has trailing bytes");

  std::vector<const TensorInfo*> by_offset;
  by_offset.reserve(tensors_.size());
  for (const TensorInfo& t : tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo* prev = by_offset[i - 1];
    if (prev->size != 0 && prev->offset + prev->size > by_offset[i]->offset) {
      return Corrupt(absl::StrCat("tensors '", prev->name, "' and '", by_offset[i]->name, "' overlap"));
    }
  }
  return absl::OkStatus();
}

const TensorInfo* PiFile::Find(std::string_view name) const {
  auto it = by_name_.find(Sv(name));
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

absl::StatusOr<const TensorInfo*> PiFile::Get(std::string_view name) const {
  const TensorInfo* t = Find(name);
  if (t == nullptr) return absl::NotFoundError(absl::StrCat(path_, ": tensor '", Sv(name), "' is missing"));
  return t;
}

absl::StatusOr<const TensorInfo*> PiFile::GetChecked(std::string_view name,
                                                     std::span<const uint64_t> expected_shape) const {
  absl::StatusOr<const TensorInfo*> t = Get(name);
  if (!t.ok()) return t;
  if (!std::equal((*t)->shape.begin(), (*t)->shape.end(), expected_shape.begin(),
                  expected_shape.end())) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": tensor '", Sv(name), "' has shape ",
                                                   (*t)->ShapeString(), ", expected [",
                                                   absl::StrJoin(expected_shape, ", "), "]"));
  }
  return t;
}

absl::Status PiFile::VerifyTensor(const TensorInfo& tensor) const {
  uint64_t actual = Checksum(Data(tensor));
  if (actual != tensor.checksum) {
    return absl::DataLossError(absl::StrCat(path_, ": tensor '", tensor.name,
                                            "' checksum mismatch (stored ",
                                            ChecksumHex(tensor.checksum), ", computed ",
                                            ChecksumHex(actual), ")"));
  }
  return absl::OkStatus();
}

absl::Status PiFile::VerifyAll(const std::function<void(uint64_t, uint64_t)>& progress) const {
  uint64_t total = 0, done = 0;
  for (const TensorInfo& t : tensors_) total += t.size;
  for (const TensorInfo& t : tensors_) {
    if (absl::Status s = VerifyTensor(t); !s.ok()) return s;
    done += t.size;
    if (progress) progress(done, total);
  }
  return absl::OkStatus();
}

uint64_t PiFile::ContentDigest() const {
  ByteWriter identity;
  for (const TensorInfo& t : tensors_) {
    identity.PutShortString(t.name);
    identity.Put<uint32_t>(static_cast<uint32_t>(t.dtype));
    for (uint64_t d : t.shape) identity.Put(d);
    identity.Put(t.checksum);
  }
  Metadata content;
  for (const auto& [key, value] : metadata_.entries()) {
    if (!key.starts_with("provenance.")) content.Set(key, value);
  }
  content.Serialize(identity);
  return Checksum(identity.bytes());
}

std::string PiFile::ContentDigestHex() const { return ChecksumHex(ContentDigest()); }

absl::StatusOr<int64_t> PiFile::GetInt(std::string_view key) const {
  auto v = metadata_.GetInt(key);
  if (!v.ok()) return Annotate(v.status());
  return v;
}
absl::StatusOr<double> PiFile::GetFloat(std::string_view key) const {
  auto v = metadata_.GetFloat(key);
  if (!v.ok()) return Annotate(v.status());
  return v;
}
absl::StatusOr<std::string> PiFile::GetString(std::string_view key) const {
  auto v = metadata_.GetString(key);
  if (!v.ok()) return Annotate(v.status());
  return v;
}
absl::StatusOr<bool> PiFile::GetBool(std::string_view key) const {
  auto v = metadata_.GetBool(key);
  if (!v.ok()) return Annotate(v.status());
  return v;
}

}  // namespace pinfer
