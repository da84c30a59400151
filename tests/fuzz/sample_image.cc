#include "tests/fuzz/sample_image.h"

#include <cstring>

#include "format/byte_io.h"
#include "format/checksum.h"
#include "format/sample_file.h"

namespace pinfer::fuzz {
namespace {

// Offsets of the header fields (format/sample_file.h).
constexpr size_t kMetadataCountAt = 12, kMetadataSizeAt = 16, kIndexOffsetAt = 24,
                 kFrameCountAt = 32, kIndexChecksumAt = 40, kHeaderChecksumAt = 56;

template <typename T>
T Load(std::span<const uint8_t> bytes, size_t at) {
  T v;
  std::memcpy(&v, bytes.data() + at, sizeof(T));
  return v;
}

template <typename T>
void Store(std::span<uint8_t> bytes, size_t at, T v) {
  std::memcpy(bytes.data() + at, &v, sizeof(T));
}

}  // namespace

bool DecodeSampleImage(std::span<const uint8_t> bytes, SampleImage* image) {
  const uint64_t size = bytes.size();
  if (size < kSampleFileHeaderSize) return false;
  const uint64_t metadata_size = Load<uint64_t>(bytes, kMetadataSizeAt);
  const uint64_t index_offset = Load<uint64_t>(bytes, kIndexOffsetAt);
  const uint64_t frames = Load<uint64_t>(bytes, kFrameCountAt);
  if (metadata_size > size - kSampleFileHeaderSize || index_offset > size ||
      index_offset < kSampleFileHeaderSize + metadata_size ||
      frames != (size - index_offset) / kSampleFileIndexEntrySize) {
    return false;
  }
  ByteReader metadata_reader(bytes.subspan(kSampleFileHeaderSize, metadata_size));
  absl::StatusOr<Metadata> metadata =
      Metadata::Parse(metadata_reader, Load<uint32_t>(bytes, kMetadataCountAt));
  if (!metadata.ok()) return false;
  image->version_minor = Load<uint16_t>(bytes, 10);
  image->metadata = *std::move(metadata);
  image->frames.clear();
  ByteReader index(bytes.subspan(index_offset));
  for (uint64_t i = 0; i < frames; ++i) {
    uint64_t offset, compressed_size, checksum;
    SampleFrame f;
    index.Get(&offset);
    index.Get(&compressed_size);
    index.Get(&f.first_sample);
    index.Get(&f.layer);
    index.Get(&f.count);
    index.Get(&checksum);
    if (offset > index_offset || compressed_size > index_offset - offset) return false;
    f.compressed.assign(bytes.begin() + offset, bytes.begin() + offset + compressed_size);
    image->frames.push_back(std::move(f));
  }
  return true;
}

std::vector<uint8_t> EncodeSampleImage(const SampleImage& image) {
  ByteWriter metadata;
  image.metadata.Serialize(metadata);
  ByteWriter out;
  out.PutBytes(kSampleFileMagic, sizeof(kSampleFileMagic));
  out.Put<uint16_t>(kSampleFileVersionMajor);
  out.Put<uint16_t>(image.version_minor);
  out.Put<uint32_t>(static_cast<uint32_t>(image.metadata.size()));
  out.Put<uint64_t>(metadata.size());
  out.PadTo(kSampleFileHeaderSize);  // the rest of the header is filled in below
  out.PutBytes(metadata.bytes().data(), metadata.size());
  ByteWriter index;
  for (const SampleFrame& f : image.frames) {
    index.Put<uint64_t>(out.size());
    index.Put<uint64_t>(f.compressed.size());
    index.Put(f.first_sample);
    index.Put(f.layer);
    index.Put(f.count);
    index.Put(Checksum(f.compressed));
    out.PutBytes(f.compressed.data(), f.compressed.size());
  }
  std::vector<uint8_t>& bytes = out.bytes();
  Store<uint64_t>(bytes, kIndexOffsetAt, bytes.size());
  Store<uint64_t>(bytes, kFrameCountAt, image.frames.size());
  bytes.insert(bytes.end(), index.bytes().begin(), index.bytes().end());
  RepairSampleChecksums(bytes);
  return std::move(bytes);
}

void RepairSampleChecksums(std::span<uint8_t> bytes) {
  const uint64_t size = bytes.size();
  if (size < kSampleFileHeaderSize) return;
  const uint64_t metadata_size = Load<uint64_t>(bytes, kMetadataSizeAt);
  const uint64_t index_offset = Load<uint64_t>(bytes, kIndexOffsetAt);
  const uint64_t frames = Load<uint64_t>(bytes, kFrameCountAt);
  if (index_offset <= size && frames <= (size - index_offset) / kSampleFileIndexEntrySize) {
    for (uint64_t i = 0; i < frames; ++i) {
      const uint64_t entry = index_offset + i * kSampleFileIndexEntrySize;
      const uint64_t offset = Load<uint64_t>(bytes, entry),
                     length = Load<uint64_t>(bytes, entry + 8);
      if (offset <= size && length <= size - offset) {
        Store<uint64_t>(bytes, entry + 32, Checksum(bytes.data() + offset, length));
      }
    }
    Store<uint64_t>(bytes, kIndexChecksumAt,
                    Checksum(bytes.data() + index_offset, frames * kSampleFileIndexEntrySize));
  }
  if (metadata_size > size - kSampleFileHeaderSize) return;
  StreamingChecksum checksum;
  checksum.Update(bytes.data(), kHeaderChecksumAt);
  checksum.Update(bytes.data() + kSampleFileHeaderSize, metadata_size);
  Store<uint64_t>(bytes, kHeaderChecksumAt, checksum.Digest());
}

}  // namespace pinfer::fuzz
