// A .pi file held as values (kind, metadata, tensors with their bytes), for the semantic fuzzers:
// the custom mutator decodes an input, changes values and encodes it again with valid checksums,
// so that the readers' checks behind the checksums are what gets exercised.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "format/metadata.h"
#include "format/pi_format.h"
#include "format/pi_writer.h"

namespace pinfer::fuzz {

struct PiImage {
  uint32_t kind = static_cast<uint32_t>(ArtifactKind::kModel);  // raw: may be an unknown kind
  Metadata metadata;
  // spec.shape and bytes need not agree: the encoder writes what it is given.
  std::vector<TensorData> tensors;
};

// Only inputs that PiFile::FromBytes accepts decode (false otherwise).
bool DecodePiImage(std::span<const uint8_t> bytes, PiImage* image);

// The layout PiWriter produces (64-byte aligned tensors, page-aligned large ones), every checksum
// computed.
std::vector<uint8_t> EncodePiImage(const PiImage& image);

// After raw byte changes: rewrites each index entry's data checksum (for entries whose range lies
// inside the file) and the header checksum, as far as the header's regions lie inside the file.
// Returns false when the header is too damaged to find the regions.
bool RepairPiChecksums(std::span<uint8_t> bytes);

}  // namespace pinfer::fuzz
