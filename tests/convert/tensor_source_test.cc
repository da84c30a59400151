// The bulk tensor readers against element-by-element references: every dtype, unaligned source
// bytes, partial blocks, odd chunk boundaries.
#include "tools/convert/tensor_source.h"

#include <random>

#include "format/quant.h"
#include "gtest/gtest.h"

namespace pinfer {
namespace {

struct Encoded {
  std::vector<uint8_t> storage;  // one spare byte in front, to test unaligned sources
  std::span<const uint8_t> bytes;
  std::vector<float> values;  // decoded reference, row-major
};

Encoded Make(DType dtype, int64_t rows, int64_t cols, bool unaligned, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist;
  std::vector<float> x(static_cast<size_t>(rows * cols));
  for (float& v : x) v = dist(rng);
  const uint64_t row_bytes = *RowBytes(dtype, cols);
  Encoded e;
  e.storage.resize(row_bytes * rows + 1);
  uint8_t* base = e.storage.data() + (unaligned ? 1 : 0);
  std::vector<uint8_t> aligned(row_bytes * rows);
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_TRUE(EncodeRow(x.data() + r * cols, cols, dtype, aligned.data() + r * row_bytes).ok());
  }
  std::copy(aligned.begin(), aligned.end(), base);
  e.bytes = {base, aligned.size()};
  e.values.resize(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_TRUE(
        DecodeRow(aligned.data() + r * row_bytes, cols, dtype, e.values.data() + r * cols).ok());
  }
  return e;
}

class TensorSourceTest : public ::testing::TestWithParam<std::tuple<DType, bool>> {};

TEST_P(TensorSourceTest, DecoderReadsAnySegment) {
  const auto [dtype, unaligned] = GetParam();
  const int64_t rows = 5, cols = 96;
  const Encoded e = Make(dtype, rows, cols, unaligned, 1);
  auto matrix = MakeStoredMatrix(e.bytes, dtype, rows, cols, "m");
  ASSERT_TRUE(matrix.ok()) << matrix.status();
  RowSegmentDecoder decode = StoredMatrixDecoder(*matrix);
  for (int64_t r = 0; r < rows; ++r) {
    for (auto [b, end] : {std::pair<int64_t, int64_t>{0, 96},
                          {0, 32},
                          {5, 37},
                          {33, 64},
                          {95, 96},
                          {40, 40},
                          {31, 65}}) {
      std::vector<float> out(static_cast<size_t>(end - b));
      ASSERT_TRUE(decode(r, b, end, out.data()).ok());
      for (int64_t c = b; c < end; ++c)
        EXPECT_EQ(out[c - b], e.values[r * cols + c]) << r << "," << c;
    }
  }
  std::vector<float> out(200);
  EXPECT_FALSE(decode(rows, 0, cols, out.data()).ok());
  EXPECT_FALSE(decode(0, 0, cols + 1, out.data()).ok());
}

TEST_P(TensorSourceTest, DirectPermutedAndTransposedTensors) {
  const auto [dtype, unaligned] = GetParam();
  const int64_t rows = 64, cols = 96;
  const Encoded e = Make(dtype, rows, cols, unaligned, 2);
  const StoredMatrix matrix = *MakeStoredMatrix(e.bytes, dtype, rows, cols, "m");
  const uint64_t row_bytes = *RowBytes(dtype, cols);

  SourceTensor direct = DirectTensor("d", matrix);
  EXPECT_EQ(direct.shape, (std::vector<uint64_t>{64, 96}));
  std::vector<float> rows_out(7 * cols);
  ASSERT_TRUE(direct.read_rows(3, 7, rows_out.data()).ok());
  EXPECT_TRUE(std::equal(rows_out.begin(), rows_out.end(), e.values.begin() + 3 * cols));
  std::vector<uint8_t> native(7 * row_bytes);
  ASSERT_TRUE(direct.read_native(3, 7, native).ok());
  EXPECT_TRUE(std::equal(native.begin(), native.end(), e.bytes.begin() + 3 * row_bytes));

  const std::vector<int64_t> order = HalfSplitToInterleavedRows(4, 16);
  SourceTensor permuted = PermutedRowsTensor("p", matrix, order);
  std::vector<float> all(rows * cols);
  ASSERT_TRUE(permuted.read_rows(0, rows, all.data()).ok());
  std::vector<uint8_t> all_native(rows * row_bytes);
  ASSERT_TRUE(permuted.read_native(0, rows, all_native).ok());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) EXPECT_EQ(all[r * cols + c], e.values[order[r] * cols + c]);
    EXPECT_TRUE(std::equal(all_native.begin() + r * row_bytes,
                           all_native.begin() + (r + 1) * row_bytes,
                           e.bytes.begin() + order[r] * row_bytes));
  }

  SourceTensor transposed = TransposedTensor("t", rows, cols, dtype, StoredMatrixDecoder(matrix));
  EXPECT_EQ(transposed.shape, (std::vector<uint64_t>{96, 64}));
  EXPECT_FALSE(transposed.read_native);
  // Chunks that start and end inside blocks.
  for (auto [first, count] : {std::pair<int64_t, int64_t>{0, 96}, {5, 37}, {42, 1}, {60, 36}}) {
    std::vector<float> out(count * rows);
    ASSERT_TRUE(transposed.read_rows(first, count, out.data()).ok());
    for (int64_t i = 0; i < count; ++i) {
      for (int64_t r = 0; r < rows; ++r) {
        EXPECT_EQ(out[i * rows + r], e.values[r * cols + first + i]) << first + i << "," << r;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllDTypes, TensorSourceTest,
                         ::testing::Combine(::testing::Values(DType::kF32, DType::kF16,
                                                              DType::kBF16, DType::kQ8_0,
                                                              DType::kQ4_0),
                                            ::testing::Bool()));

TEST(TensorSource, HalfSplitToInterleaved) {
  // One head of 8: our rows (0..7) come from HF rows 0,4,1,5,2,6,3,7.
  EXPECT_EQ(HalfSplitToInterleavedRows(1, 8), (std::vector<int64_t>{0, 4, 1, 5, 2, 6, 3, 7}));
  EXPECT_EQ(HalfSplitToInterleavedRows(2, 4), (std::vector<int64_t>{0, 2, 1, 3, 4, 6, 5, 7}));
}

TEST(TensorSource, StoredMatrixSizeIsChecked) {
  std::vector<uint8_t> bytes(100);
  absl::StatusOr<StoredMatrix> m = MakeStoredMatrix(bytes, DType::kF32, 5, 6, "f: tensor 'x'");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().message(), "f: tensor 'x': holds 100 bytes but f32 [5, 6] needs 120");
  EXPECT_FALSE(MakeStoredMatrix(bytes, DType::kQ8_0, 1, 48, "q").ok());
}

}  // namespace
}  // namespace pinfer
