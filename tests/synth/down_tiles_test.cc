// ffn_down tiles survive GGML's reference quantizer bit-exactly in both orientations.
#include "bench/synth/down_tiles.h"

#include <cstring>
#include <vector>

#include "format/quant.h"
#include "gtest/gtest.h"

namespace pinfer::synth {
namespace {

// A rows×cols matrix (neuron-major, as ffn_down_t) made of tiles.
std::vector<float> TiledMatrix(const DownTileSource& source, int64_t rows, int64_t cols) {
  std::vector<float> m(static_cast<size_t>(rows * cols));
  float tile[kTile * kTile];
  for (int64_t i = 0; i < rows / kTile; ++i) {
    for (int64_t j = 0; j < cols / kTile; ++j) {
      FillDownTile(source, i, j, tile);
      for (int64_t r = 0; r < kTile; ++r) {
        for (int64_t c = 0; c < kTile; ++c)
          m[(i * kTile + r) * cols + j * kTile + c] = tile[r * kTile + c];
      }
    }
  }
  return m;
}

std::vector<float> Transpose(const std::vector<float>& m, int64_t rows, int64_t cols) {
  std::vector<float> t(m.size());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) t[c * rows + r] = m[r * cols + c];
  }
  return t;
}

// Quantizes every row with the reference quantizer; returns the bytes.
std::vector<uint8_t> QuantizeRows(const std::vector<float>& m, int64_t rows, int64_t cols,
                                  DType dtype) {
  const uint64_t row_bytes = *RowBytes(dtype, static_cast<uint64_t>(cols));
  std::vector<uint8_t> bytes(row_bytes * static_cast<uint64_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_TRUE(EncodeRow(m.data() + r * cols, static_cast<size_t>(cols), dtype,
                          bytes.data() + r * row_bytes)
                    .ok());
  }
  return bytes;
}

std::vector<float> DecodeRows(const std::vector<uint8_t>& bytes, int64_t rows, int64_t cols,
                              DType dtype) {
  const uint64_t row_bytes = *RowBytes(dtype, static_cast<uint64_t>(cols));
  std::vector<float> m(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_TRUE(DecodeRow(bytes.data() + r * row_bytes, static_cast<size_t>(cols), dtype,
                          m.data() + r * cols)
                    .ok());
  }
  return m;
}

// Equal as numbers. (Not as bits: GGML's q4_0 block of zeros has the scale -0.0, so it decodes to
// -0.0; the bytes are still canonical and identical in both orientations, which is what counts.)
bool Equal(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!(a[i] == b[i])) return false;
  }
  return true;
}

class DownTilesTest : public ::testing::TestWithParam<DType> {};

TEST_P(DownTilesTest, QuantizationIsExactInBothOrientations) {
  const DType dtype = GetParam();
  constexpr int64_t kRows = 4 * kTile, kCols = 6 * kTile;  // n_ff x d
  for (double std : {0.02, 1e-3, 3e-5, 1.0}) {
    SCOPED_TRACE(std);
    DownTileSource source{42, "blk.0.ffn_down", dtype, std, kCols / kTile, 1};
    const std::vector<float> values = TiledMatrix(source, kRows, kCols);
    // model.pi orientation: rows are neurons, blocks run along d.
    const std::vector<uint8_t> pi_bytes = QuantizeRows(values, kRows, kCols, dtype);
    EXPECT_TRUE(Equal(DecodeRows(pi_bytes, kRows, kCols, dtype), values));
    // GGUF orientation: rows are output dimensions, blocks run along n_ff.
    const std::vector<float> transposed = Transpose(values, kRows, kCols);
    const std::vector<uint8_t> gguf_bytes = QuantizeRows(transposed, kCols, kRows, dtype);
    const std::vector<float> gguf_values = DecodeRows(gguf_bytes, kCols, kRows, dtype);
    EXPECT_TRUE(Equal(gguf_values, transposed));
    // Re-importing the GGUF (decode, transpose, quantize along d) gives model.pi's bytes.
    EXPECT_EQ(QuantizeRows(Transpose(gguf_values, kCols, kRows), kRows, kCols, dtype), pi_bytes);
  }
}

TEST_P(DownTilesTest, ValuesHaveTheRequestedScaleAndZeroBiasColumns) {
  const DType dtype = GetParam();
  DownTileSource source{7, "blk.3.ffn_down", dtype, 0.01, 8, 1};
  const std::vector<float> values = TiledMatrix(source, 8 * kTile, 8 * kTile);
  double sum2 = 0;
  int64_t n = 0;
  for (int64_t r = 0; r < 8 * kTile; ++r) {
    for (int64_t c = 0; c < 8 * kTile; ++c) {
      const float v = values[r * 8 * kTile + c];
      if (c < kTile) {
        ASSERT_EQ(v, 0.0f);  // the bias channel's tile column
        continue;
      }
      sum2 += static_cast<double>(v) * v;
      ++n;
    }
  }
  // Normal values of std σ, clamped at 2.5σ, plus the diagonal extremes at 2.5σ.
  EXPECT_NEAR(std::sqrt(sum2 / static_cast<double>(n)), 0.01, 0.0015);
  // Same seed and stream: same tile; another stream: another tile.
  float a[kTile * kTile], b[kTile * kTile];
  FillDownTile(source, 2, 3, a);
  FillDownTile(source, 2, 3, b);
  EXPECT_EQ(std::memcmp(a, b, sizeof(a)), 0);
  source.stream = "blk.4.ffn_down";
  FillDownTile(source, 2, 3, b);
  EXPECT_NE(std::memcmp(a, b, sizeof(a)), 0);
}

INSTANTIATE_TEST_SUITE_P(DTypes, DownTilesTest,
                         ::testing::Values(DType::kQ8_0, DType::kQ4_0, DType::kF16, DType::kBF16,
                                           DType::kF32),
                         [](const ::testing::TestParamInfo<DType>& info) {
                           return std::string(DTypeName(info.param));
                         });

}  // namespace
}  // namespace pinfer::synth
