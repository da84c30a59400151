// A sample file (format/sample_file.h) held as parts, for the sample file fuzzer's mutator: the
// metadata, and each frame's compressed bytes with its index fields. Encoding lays the frames out
// one after the other and computes every checksum (header, index, frames), so that mutated
// inputs reach the reader's checks behind the checksums.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "format/metadata.h"

namespace pinfer::fuzz {

struct SampleFrame {
  uint64_t first_sample = 0;
  uint32_t layer = 0;
  uint32_t count = 0;
  std::vector<uint8_t> compressed;
};

struct SampleImage {
  uint16_t version_minor = 0;
  Metadata metadata;
  std::vector<SampleFrame> frames;
};

// False unless the header, metadata and index parse and every frame lies inside the file.
bool DecodeSampleImage(std::span<const uint8_t> bytes, SampleImage* image);
std::vector<uint8_t> EncodeSampleImage(const SampleImage& image);

// After raw byte changes: rewrites the frame checksums (of entries inside the file), the index
// checksum and the header checksum, as far as the header's fields allow.
void RepairSampleChecksums(std::span<uint8_t> bytes);

}  // namespace pinfer::fuzz
