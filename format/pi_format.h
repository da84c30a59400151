// Constants and the fixed header of the .pi container. format/README.md is the normative spec.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/status/statusor.h"

namespace pinfer {

inline constexpr char kPiMagic[8] = {'P', 'I', 'N', 'F', 'E', 'R', '\0', '\x1a'};
// Readers reject another major version; a minor version only adds metadata keys or tensors that
// older readers may ignore.
inline constexpr uint16_t kPiVersionMajor = 1;
inline constexpr uint16_t kPiVersionMinor = 0;
inline constexpr uint64_t kPiHeaderSize = 128;
// Every tensor starts on a 64-byte boundary (a cache line, and enough for any SIMD load); tensors of
// kPiPageAlignThreshold bytes or more start on a 4 KiB page so that they can be mapped on their own.
inline constexpr uint64_t kPiTensorAlignment = 64;
inline constexpr uint64_t kPiPageAlignment = 4096;
inline constexpr uint64_t kPiPageAlignThreshold = 1 << 20;
inline constexpr uint32_t kPiMaxDims = 4;

// Wire values: never renumber.
enum class ArtifactKind : uint32_t {
  kModel = 1,
  kProfile = 2,
  kPredictor = 3,
  kPlan = 4,
};

std::string_view ArtifactKindName(ArtifactKind kind);
std::optional<ArtifactKind> ArtifactKindFromRaw(uint32_t raw);

// Byte-for-byte the first 128 bytes of a .pi file.
struct PiHeader {
  char magic[8];
  uint16_t version_major;
  uint16_t version_minor;
  uint32_t kind;
  uint32_t flags;  // 0; reserved
  uint32_t tensor_alignment;
  uint64_t metadata_offset;
  uint64_t metadata_size;
  uint64_t index_offset;
  uint64_t index_size;
  uint64_t data_offset;
  uint64_t file_size;
  uint32_t metadata_count;
  uint32_t tensor_count;
  uint8_t reserved[40];
  // XXH3-64 of header bytes [0, 120) followed by the metadata and index regions.
  uint64_t header_checksum;
};
static_assert(sizeof(PiHeader) == kPiHeaderSize);

}  // namespace pinfer
