// Block quantization, bit-identical to GGUF/GGML's q8_0 and q4_0, and conversions between every
// floating dtype and f32. These are the scalar references: SIMD kernels are tested against them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "format/dtype.h"

namespace pinfer {

// 32 values = d * q, q in [-127, 127].
struct BlockQ8_0 {
  uint16_t d;  // f16 scale
  int8_t qs[kQuantBlockElements];
};
static_assert(sizeof(BlockQ8_0) == 34);

// 32 values = d * (q - 8), q in [0, 15]; byte j holds element j (low nibble) and j + 16 (high).
struct BlockQ4_0 {
  uint16_t d;  // f16 scale
  uint8_t qs[kQuantBlockElements / 2];
};
static_assert(sizeof(BlockQ4_0) == 18);

// q4_0x16: the bytes of a q4_0 row reordered so that a 512-bit integer dot product covers 16
// blocks, one 32-bit lane per block (format/README.md). Each full group of 16 consecutive blocks
// (512 elements, 288 bytes) is stored as
//   bytes [0, 32):             the 16 f16 scales, block j's at 2j;
//   bytes [32 + 64g, 96 + 64g), g = 0..3: 16 lanes of 4 bytes, lane j = bytes qs[4g .. 4g+3] of
//                              block j (their low nibbles are elements 4g..4g+3, the high ones
//                              16+4g..16+4g+3);
// the blocks after the last full group stay plain q4_0 blocks at their usual offsets. Any row
// length that is a multiple of 32 works, and every block keeps its byte range within its group,
// so rows keep q4_0's size and stay contiguous.
inline constexpr size_t kQ4x16GroupBlocks = 16;
inline constexpr size_t kQ4x16GroupBytes = kQ4x16GroupBlocks * sizeof(BlockQ4_0);  // 288

// Offset, within a q4_0x16 row of `blocks` blocks, of block b's f16 scale, and of byte i (i < 16)
// of its packed nibbles (qs[i] of the q4_0 block).
inline size_t Q4x16ScaleOffset(size_t b, size_t blocks) {
  const size_t group = b / kQ4x16GroupBlocks;
  if (group >= blocks / kQ4x16GroupBlocks) return b * sizeof(BlockQ4_0);
  return group * kQ4x16GroupBytes + 2 * (b % kQ4x16GroupBlocks);
}
inline size_t Q4x16NibbleOffset(size_t b, size_t i, size_t blocks) {
  const size_t group = b / kQ4x16GroupBlocks;
  if (group >= blocks / kQ4x16GroupBlocks) return b * sizeof(BlockQ4_0) + 2 + i;
  return group * kQ4x16GroupBytes + 32 + 64 * (i / 4) + 4 * (b % kQ4x16GroupBlocks) + i % 4;
}
// Block b of a q4_0x16 row of `blocks` blocks, as a plain q4_0 block.
inline BlockQ4_0 Q4_0x16Block(const uint8_t* row, size_t b, size_t blocks) {
  BlockQ4_0 block;
  std::memcpy(&block.d, row + Q4x16ScaleOffset(b, blocks), 2);
  if (b / kQ4x16GroupBlocks >= blocks / kQ4x16GroupBlocks) {
    std::memcpy(block.qs, row + b * sizeof(BlockQ4_0) + 2, sizeof(block.qs));
  } else {
    for (size_t i = 0; i < sizeof(block.qs); i += 4) {
      std::memcpy(block.qs + i, row + Q4x16NibbleOffset(b, i, blocks), 4);
    }
  }
  return block;
}

// The two directions of the reordering, for `rows` rows of `cols` elements (cols a multiple of
// 32; src and dst must not overlap). Lossless: each is the other's inverse, byte for byte. Used
// by pi-convert (q4_0 sources), and to hand q4_0 back to what only reads q4_0 (GGUF export, GPU
// upload).
void ConvertQ4_0ToQ4_0x16(const void* src, void* dst, size_t rows, size_t cols);
void ConvertQ4_0x16ToQ4_0(const void* src, void* dst, size_t rows, size_t cols);

// Quantize n values (n a multiple of 32) exactly as ggml's quantize_row_*_ref does.
void QuantizeRowQ8_0(const float* x, BlockQ8_0* out, size_t n);
void QuantizeRowQ4_0(const float* x, BlockQ4_0* out, size_t n);
// The same q4_0 blocks with a better scale: per block, the f16 scale among candidates around
// ggml's (largest magnitude -> -8) that minimises the squared error of the block. ggml's rule
// wastes range on one outlier per 32 values; on small models this roughly halves the perplexity
// cost of 4 bits. Not bit-identical to llama.cpp's quantizer (the format is the same).
void QuantizeRowQ4_0MinError(const float* x, BlockQ4_0* out, size_t n);
void DequantizeRowQ8_0(const BlockQ8_0* blocks, float* out, size_t n);
void DequantizeRowQ4_0(const BlockQ4_0* blocks, float* out, size_t n);

// How EncodeRow chooses q4_0 scales: ggml's rule (blocks byte-identical to llama.cpp's) or the
// error-minimising search. q8_0 always follows ggml (its rounding error is already negligible).
enum class Q4Scales { kGgml, kMinError };

// Encode n f32 values as `dtype` into `out` (RowBytes(dtype, n) bytes). Integer dtypes are not
// encodable from floats and return InvalidArgument. q4_0x16 holds exactly the q4_0 blocks of the
// same values, reordered.
absl::Status EncodeRow(const float* x, size_t n, DType dtype, void* out,
                       Q4Scales q4_scales = Q4Scales::kGgml);
// Encode a row-major [rows, cols] f32 matrix row by row, as EncodeRow (ggml's q4_0 scales):
// rows × RowBytes(dtype, cols) bytes. InvalidArgument when `values` is not rows × cols long or
// the rows cannot be encoded (EncodeRow's errors).
absl::StatusOr<std::vector<uint8_t>> EncodeMatrix(std::span<const float> values, int64_t rows,
                                                  int64_t cols, DType dtype);
// Decode n values of a floating or quantized dtype to f32. For q4_0x16, whose groups are per row,
// n is one whole row.
absl::Status DecodeRow(const void* in, size_t n, DType dtype, float* out);

}  // namespace pinfer
