#include "tests/fuzz/pi_image.h"

#include <cstddef>
#include <cstring>

#include "format/byte_io.h"
#include "format/checksum.h"
#include "format/pi_file.h"

namespace pinfer::fuzz {
namespace {

uint64_t AlignUp(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

void WriteIndex(const PiImage& image, const std::vector<uint64_t>& offsets, ByteWriter& index) {
  for (size_t i = 0; i < image.tensors.size(); ++i) {
    const TensorData& t = image.tensors[i];
    index.PutShortString(t.spec.name);
    index.Put<uint32_t>(static_cast<uint32_t>(t.spec.dtype));
    index.Put<uint32_t>(static_cast<uint32_t>(t.spec.shape.size()));
    for (uint64_t d : t.spec.shape) index.Put(d);
    index.Put(offsets[i]);
    index.Put<uint64_t>(t.bytes.size());
    index.Put(Checksum(t.bytes));
  }
}

void WriteHeaderChecksum(std::span<uint8_t> bytes, const PiHeader& header) {
  StreamingChecksum checksum;
  checksum.Update(bytes.data(), offsetof(PiHeader, header_checksum));
  checksum.Update(bytes.data() + header.metadata_offset, header.metadata_size + header.index_size);
  const uint64_t digest = checksum.Digest();
  std::memcpy(bytes.data() + offsetof(PiHeader, header_checksum), &digest, sizeof(digest));
}

}  // namespace

bool DecodePiImage(std::span<const uint8_t> bytes, PiImage* image) {
  absl::StatusOr<std::unique_ptr<PiFile>> file = PiFile::FromBytes(bytes, "mutator");
  if (!file.ok()) return false;
  image->kind = (*file)->header().kind;
  image->metadata = (*file)->metadata();
  image->tensors.clear();
  for (const TensorInfo& t : (*file)->tensors()) {
    std::span<const uint8_t> data = (*file)->Data(t);
    image->tensors.push_back({{t.name, t.dtype, t.shape}, {data.begin(), data.end()}});
  }
  return true;
}

std::vector<uint8_t> EncodePiImage(const PiImage& image) {
  ByteWriter metadata;
  image.metadata.Serialize(metadata);
  // The index's size does not depend on the offsets it records.
  std::vector<uint64_t> offsets(image.tensors.size(), 0);
  ByteWriter sizing;
  WriteIndex(image, offsets, sizing);
  const uint64_t index_offset = kPiHeaderSize + metadata.size();
  const uint64_t data_offset = AlignUp(index_offset + sizing.size(), kPiTensorAlignment);
  uint64_t end = data_offset;
  for (size_t i = 0; i < image.tensors.size(); ++i) {
    const uint64_t size = image.tensors[i].bytes.size();
    end = AlignUp(end, size >= kPiPageAlignThreshold ? kPiPageAlignment : kPiTensorAlignment);
    offsets[i] = end;
    end += size;
  }
  ByteWriter index;
  WriteIndex(image, offsets, index);

  PiHeader header{};
  std::memcpy(header.magic, kPiMagic, sizeof(kPiMagic));
  header.version_major = kPiVersionMajor;
  header.version_minor = kPiVersionMinor;
  header.kind = image.kind;
  header.tensor_alignment = kPiTensorAlignment;
  header.metadata_offset = kPiHeaderSize;
  header.metadata_size = metadata.size();
  header.index_offset = index_offset;
  header.index_size = index.size();
  header.data_offset = data_offset;
  header.file_size = end;
  header.metadata_count = static_cast<uint32_t>(image.metadata.size());
  header.tensor_count = static_cast<uint32_t>(image.tensors.size());

  std::vector<uint8_t> out(end, 0);
  std::memcpy(out.data(), &header, sizeof(header));
  std::memcpy(out.data() + kPiHeaderSize, metadata.bytes().data(), metadata.size());
  std::memcpy(out.data() + index_offset, index.bytes().data(), index.size());
  for (size_t i = 0; i < image.tensors.size(); ++i) {
    const std::vector<uint8_t>& b = image.tensors[i].bytes;
    if (!b.empty()) std::memcpy(out.data() + offsets[i], b.data(), b.size());
  }
  WriteHeaderChecksum(out, header);
  return out;
}

bool RepairPiChecksums(std::span<uint8_t> bytes) {
  if (bytes.size() < kPiHeaderSize) return false;
  PiHeader header;
  std::memcpy(&header, bytes.data(), sizeof(header));
  const uint64_t size = bytes.size();
  if (header.metadata_offset != kPiHeaderSize || header.metadata_size > size ||
      header.index_offset != header.metadata_offset + header.metadata_size ||
      header.index_offset > size || header.index_size > size - header.index_offset) {
    return false;
  }
  // Walk the index as leniently as possible: the entries that parse get their data checksum back.
  ByteReader index({bytes.data() + header.index_offset, header.index_size});
  for (uint32_t i = 0; i < header.tensor_count; ++i) {
    std::string name;
    uint32_t dtype, n_dims;
    if (!index.GetShortString(&name) || !index.Get(&dtype) || !index.Get(&n_dims) || n_dims > 16 ||
        !index.Skip(8ull * n_dims)) {
      break;
    }
    uint64_t offset, tensor_size;
    if (!index.Get(&offset) || !index.Get(&tensor_size) || index.remaining() < 8) break;
    const uint64_t checksum_at = header.index_offset + index.position();
    index.Skip(8);
    if (offset > size || tensor_size > size - offset) continue;
    const uint64_t digest = Checksum(bytes.data() + offset, tensor_size);
    std::memcpy(bytes.data() + checksum_at, &digest, sizeof(digest));
  }
  WriteHeaderChecksum(bytes, header);
  return true;
}

}  // namespace pinfer::fuzz
