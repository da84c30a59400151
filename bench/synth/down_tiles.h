// ffn_down values that hold the same numbers in model.pi's orientation (ffn_down_t [n_ff, d],
// quantized along d) and in GGUF's (ffn_down [d, n_ff], quantized along n_ff).
//
// For q8_0 and q4_0 a value survives re-quantization in the other orientation only if every
// 32-block of it, read along either axis, has the same scale. So the matrix is built from 32x32
// tiles, each with one f16 scale d and integer codes k (value = k·d), whose diagonal holds the
// extreme code: ±127 for q8_0 (and |k| <= 127 elsewhere), -8 for q4_0 (and -8 <= k <= 7
// elsewhere). Every row block and every column block of a tile then has its largest magnitude,
// 127·|d| or 8·|d|, at the diagonal, so GGML's reference quantizer (format/quant.h) computes the
// same d, and the same codes, in both orientations: bit-exact both ways. Float dtypes need no
// tiling (rounding is per element), but use the same tiles so that one function serves all.
// An all-zero tile quantizes to GGML's canonical zero block in both orientations too.
#pragma once

#include <cstdint>
#include <string>

#include "format/dtype.h"

namespace pinfer::synth {

inline constexpr int64_t kTile = 32;

struct DownTileSource {
  uint64_t seed = 0;
  std::string stream;  // e.g. "blk.3.ffn_down": the RNG stream family of this matrix
  DType dtype = DType::kF16;
  double std = 0;              // σ_d, the standard deviation the values are drawn with
  int64_t tile_cols = 0;       // d / 32
  int64_t zero_tile_cols = 0;  // tile columns [0, zero_tile_cols) are all zero (the bias channel)
};

// Fills tile (tile_row, tile_col): out[r * 32 + c] is element (32·tile_row + r, 32·tile_col + c)
// of ffn_down_t, i.e. neuron 32·tile_row + r, output dimension 32·tile_col + c. The values are
// exactly representable in source.dtype.
void FillDownTile(const DownTileSource& source, int64_t tile_row, int64_t tile_col, float* out);

}  // namespace pinfer::synth
