// Element types of .pi tensors. The numeric values are part of the file format: never renumber.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "absl/status/statusor.h"

namespace pinfer {

enum class DType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kBF16 = 2,
  kQ8_0 = 3,  // GGUF/GGML block_q8_0: f16 scale + 32 x int8.
  kQ4_0 = 4,  // GGUF/GGML block_q4_0: f16 scale + 16 bytes of packed nibbles.
  kI32 = 5,
  kU8 = 6,
  // q4_0 blocks (the same 18 bytes per 32 elements) reordered within each group of 16 blocks of a
  // row so that one 512-bit integer dot product covers 16 blocks (format/README.md,
  // format/quant.h).
  kQ4_0x16 = 7,
};

// Quantized types group this many consecutive elements of a row into one block.
inline constexpr int kQuantBlockElements = 32;

struct DTypeInfo {
  std::string_view name;
  uint32_t block_elements;  // 1 for plain types.
  uint32_t block_bytes;     // bytes of one block (of one element for plain types).
  bool quantized;
  bool floating;  // f32/f16/bf16 and the quantized float formats.
};

bool IsKnownDType(uint32_t raw);
// Precondition: IsKnownDType(static_cast<uint32_t>(dtype)).
const DTypeInfo& GetDTypeInfo(DType dtype);
inline std::string_view DTypeName(DType dtype) { return GetDTypeInfo(dtype).name; }
absl::StatusOr<DType> ParseDType(std::string_view name);
// ParseDType for a weight matrix: f32, f16, bf16, q8_0 or q4_0 (the error offers only those;
// q4_0x16 is a storage layout pi-convert picks, not a choice).
absl::StatusOr<DType> ParseWeightDType(std::string_view name);

// Bytes that `elements` consecutive elements take. Fails when a quantized row length is not a
// multiple of the block size.
absl::StatusOr<uint64_t> RowBytes(DType dtype, uint64_t elements);
// Bytes of a whole tensor of this shape (row-major; the last dimension is the contiguous one and
// the one quantized blocks run along). Checks for overflow.
absl::StatusOr<uint64_t> TensorBytes(DType dtype, std::span<const uint64_t> shape);

}  // namespace pinfer
