// Block quantization, bit-identical to GGUF/GGML's q8_0 and q4_0, and conversions between every
// floating dtype and f32. These are the scalar references: SIMD kernels are tested against them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "absl/status/status.h"
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
// encodable from floats and return InvalidArgument.
absl::Status EncodeRow(const float* x, size_t n, DType dtype, void* out,
                       Q4Scales q4_scales = Q4Scales::kGgml);
// Decode n values of a floating or quantized dtype to f32.
absl::Status DecodeRow(const void* in, size_t n, DType dtype, float* out);

}  // namespace pinfer
