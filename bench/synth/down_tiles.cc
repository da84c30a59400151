#include "bench/synth/down_tiles.h"

#include <algorithm>
#include <cmath>

#include "bench/synth/synth_design.h"
#include "bench/synth/synth_random.h"
#include "format/half.h"

namespace pinfer::synth {
namespace {

// The nearest f16 value, as a float; never zero, so that a tile's extreme is never zero.
float F16Scale(double value) {
  const float d = F16ToF32(F32ToF16(static_cast<float>(value)));
  return d > 0 ? d : F16ToF32(1);  // the smallest positive subnormal
}

// Rounds half away from zero, like std::lround, without the libm call (|x| is small here).
long RoundToCode(double x) { return static_cast<long>(x + (x >= 0 ? 0.5 : -0.5)); }

float RoundToFloatDType(float value, DType dtype) {
  switch (dtype) {
    case DType::kF16:
      return F16ToF32(F32ToF16(value));
    case DType::kBF16:
      return BF16ToF32(F32ToBF16(value));
    default:
      return value;
  }
}

}  // namespace

void FillDownTile(const DownTileSource& source, int64_t tile_row, int64_t tile_col, float* out) {
  constexpr int kN = kTile * kTile;
  if (tile_col < source.zero_tile_cols) {
    std::fill(out, out + kN, 0.0f);
    return;
  }
  RandomStream stream(StreamKey(source.seed, source.stream,
                                static_cast<uint64_t>(tile_row * source.tile_cols + tile_col)));
  const uint64_t signs = stream.NextU64();
  float z[kN];
  stream.FillNormal(z, kN);

  switch (source.dtype) {
    case DType::kQ8_0: {
      // value = k·d, |k| <= 127; the diagonal holds ±127, so 127·d is every block's maximum.
      const float d = F16Scale(source.std * kDownTileSpan / 127);
      const double codes_per_unit = 127 / kDownTileSpan;
      for (int r = 0; r < kTile; ++r) {
        for (int c = 0; c < kTile; ++c) {
          long k = r == c ? (((signs >> r) & 1) ? 127 : -127)
                          : std::clamp(RoundToCode(z[r * kTile + c] * codes_per_unit), -127L, 127L);
          out[r * kTile + c] = static_cast<float>(k) * d;
        }
      }
      return;
    }
    case DType::kQ4_0: {
      // value = k·d, -8 <= k <= 7; the diagonal holds -8, the only code of magnitude 8. The sign
      // of d decides whether the extremes are negative or positive.
      const float magnitude = F16Scale(source.std * kDownTileSpan / 8);
      const float d = ((signs >> 32) & 1) ? -magnitude : magnitude;
      const double codes_per_unit = (d > 0 ? 8 : -8) / kDownTileSpan;
      for (int r = 0; r < kTile; ++r) {
        for (int c = 0; c < kTile; ++c) {
          long k =
              r == c ? -8 : std::clamp(RoundToCode(z[r * kTile + c] * codes_per_unit), -8L, 7L);
          out[r * kTile + c] = static_cast<float>(k) * d;
        }
      }
      return;
    }
    default:
      for (int i = 0; i < kN; ++i) {
        out[i] = RoundToFloatDType(static_cast<float>(source.std * z[i]), source.dtype);
      }
      return;
  }
}

}  // namespace pinfer::synth
