#include "tools/convert/tensor_source.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "format/quant.h"
#include "format/strings.h"

namespace pinfer {
namespace {

// The alignment DecodeRow's typed reads need.
size_t NaturalAlignment(DType dtype) { return dtype == DType::kF32 ? 4 : 2; }

struct MatrixLayout {
  StoredMatrix matrix;
  uint64_t row_bytes = 0;
  uint32_t block_elements = 1;
  uint32_t block_bytes = 4;
};

std::shared_ptr<const MatrixLayout> Layout(const StoredMatrix& matrix) {
  auto layout = std::make_shared<MatrixLayout>();
  layout->matrix = matrix;
  const DTypeInfo& info = GetDTypeInfo(matrix.dtype);
  layout->block_elements = info.block_elements;
  layout->block_bytes = info.block_bytes;
  layout->row_bytes = static_cast<uint64_t>(matrix.cols) / info.block_elements * info.block_bytes;
  return layout;
}

}  // namespace

absl::StatusOr<StoredMatrix> MakeStoredMatrix(std::span<const uint8_t> bytes, DType dtype,
                                              int64_t rows, int64_t cols, const std::string& what) {
  if (rows <= 0 || cols <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": invalid shape ", rows, " x ", cols));
  }
  const uint64_t shape[] = {static_cast<uint64_t>(rows), static_cast<uint64_t>(cols)};
  absl::StatusOr<uint64_t> expected = TensorBytes(dtype, shape);
  if (!expected.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", expected.status().message()));
  }
  if (*expected != bytes.size()) {
    return absl::DataLossError(absl::StrCat(what, ": holds ", bytes.size(), " bytes but ",
                                            Sv(DTypeName(dtype)), " [", rows, ", ", cols,
                                            "] needs ", *expected));
  }
  return StoredMatrix{bytes, dtype, rows, cols};
}

RowSegmentDecoder StoredMatrixDecoder(const StoredMatrix& matrix) {
  std::shared_ptr<const MatrixLayout> layout = Layout(matrix);
  return [layout](int64_t row, int64_t begin, int64_t end, float* out) -> absl::Status {
    const MatrixLayout& l = *layout;
    if (row < 0 || row >= l.matrix.rows || begin < 0 || end > l.matrix.cols || begin > end) {
      return absl::OutOfRangeError(
          absl::StrCat("row ", row, " [", begin, ", ", end, ") is outside the stored matrix"));
    }
    const int64_t block = l.block_elements;
    const int64_t first_block = begin / block;
    const int64_t end_block = (end + block - 1) / block;
    const uint8_t* src = l.matrix.bytes.data() + static_cast<uint64_t>(row) * l.row_bytes +
                         static_cast<uint64_t>(first_block) * l.block_bytes;
    const size_t src_bytes = static_cast<size_t>(end_block - first_block) * l.block_bytes;
    const int64_t decoded = (end_block - first_block) * block;
    const bool aligned = reinterpret_cast<uintptr_t>(src) % NaturalAlignment(l.matrix.dtype) == 0;
    const bool exact = first_block * block == begin && decoded == end - begin;
    if (aligned && exact) {
      return DecodeRow(src, static_cast<size_t>(decoded), l.matrix.dtype, out);
    }
    // Unaligned source (safetensors does not align tensors) or a partial block: go through
    // aligned scratch buffers.
    std::unique_ptr<uint64_t[]> raw;
    if (!aligned) {
      raw.reset(new uint64_t[(src_bytes + 7) / 8]);
      std::memcpy(raw.get(), src, src_bytes);
      src = reinterpret_cast<const uint8_t*>(raw.get());
    }
    if (exact) return DecodeRow(src, static_cast<size_t>(decoded), l.matrix.dtype, out);
    std::vector<float> values(static_cast<size_t>(decoded));
    if (absl::Status s = DecodeRow(src, values.size(), l.matrix.dtype, values.data()); !s.ok()) {
      return s;
    }
    const int64_t skip = begin - first_block * block;
    std::copy(values.begin() + skip, values.begin() + skip + (end - begin), out);
    return absl::OkStatus();
  };
}

SourceTensor DirectTensor(std::string name, const StoredMatrix& matrix, bool vector) {
  SourceTensor t;
  t.name = std::move(name);
  t.shape = vector ? std::vector<uint64_t>{static_cast<uint64_t>(matrix.rows * matrix.cols)}
                   : std::vector<uint64_t>{static_cast<uint64_t>(matrix.rows),
                                           static_cast<uint64_t>(matrix.cols)};
  t.native_dtype = matrix.dtype;
  RowSegmentDecoder decoder = StoredMatrixDecoder(matrix);
  const int64_t cols = matrix.cols;
  // For a vector our single row is the whole stored matrix (rows x cols values).
  const int64_t stored_rows_per_row = vector ? matrix.rows : 1;
  t.read_rows = [decoder, cols, stored_rows_per_row](int64_t first, int64_t count,
                                                     float* out) -> absl::Status {
    for (int64_t r = 0; r < count * stored_rows_per_row; ++r) {
      if (absl::Status s = decoder(first * stored_rows_per_row + r, 0, cols, out + r * cols);
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  };
  std::shared_ptr<const MatrixLayout> layout = Layout(matrix);
  t.read_native = [layout, stored_rows_per_row](int64_t first, int64_t count,
                                                std::span<uint8_t> out) -> absl::Status {
    const uint64_t offset = static_cast<uint64_t>(first * stored_rows_per_row) * layout->row_bytes;
    const uint64_t size = static_cast<uint64_t>(count * stored_rows_per_row) * layout->row_bytes;
    if (size != out.size() || offset + size > layout->matrix.bytes.size()) {
      return absl::OutOfRangeError("native read outside the stored matrix");
    }
    std::memcpy(out.data(), layout->matrix.bytes.data() + offset, size);
    return absl::OkStatus();
  };
  return t;
}

SourceTensor PermutedRowsTensor(std::string name, const StoredMatrix& matrix,
                                std::vector<int64_t> source_row) {
  SourceTensor t;
  t.name = std::move(name);
  t.shape = {static_cast<uint64_t>(matrix.rows), static_cast<uint64_t>(matrix.cols)};
  t.native_dtype = matrix.dtype;
  auto rows = std::make_shared<const std::vector<int64_t>>(std::move(source_row));
  RowSegmentDecoder decoder = StoredMatrixDecoder(matrix);
  const int64_t cols = matrix.cols;
  t.read_rows = [decoder, cols, rows](int64_t first, int64_t count, float* out) -> absl::Status {
    for (int64_t r = 0; r < count; ++r) {
      if (first + r >= static_cast<int64_t>(rows->size())) {
        return absl::OutOfRangeError("row outside the permutation");
      }
      if (absl::Status s = decoder((*rows)[first + r], 0, cols, out + r * cols); !s.ok()) return s;
    }
    return absl::OkStatus();
  };
  std::shared_ptr<const MatrixLayout> layout = Layout(matrix);
  t.read_native = [layout, rows](int64_t first, int64_t count,
                                 std::span<uint8_t> out) -> absl::Status {
    const uint64_t row_bytes = layout->row_bytes;
    if (static_cast<uint64_t>(count) * row_bytes != out.size() ||
        first + count > static_cast<int64_t>(rows->size())) {
      return absl::OutOfRangeError("native read outside the stored matrix");
    }
    for (int64_t r = 0; r < count; ++r) {
      const int64_t source = (*rows)[first + r];
      if (source < 0 || source >= layout->matrix.rows) {
        return absl::OutOfRangeError("permutation points outside the stored matrix");
      }
      std::memcpy(out.data() + r * row_bytes,
                  layout->matrix.bytes.data() + static_cast<uint64_t>(source) * row_bytes,
                  row_bytes);
    }
    return absl::OkStatus();
  };
  return t;
}

SourceTensor TransposedTensor(std::string name, int64_t stored_rows, int64_t stored_cols,
                              DType native_dtype, RowSegmentDecoder decoder) {
  SourceTensor t;
  t.name = std::move(name);
  t.shape = {static_cast<uint64_t>(stored_cols), static_cast<uint64_t>(stored_rows)};
  t.native_dtype = native_dtype;
  t.read_rows = [decoder = std::move(decoder), stored_rows](int64_t first, int64_t count,
                                                            float* out) -> absl::Status {
    // Decode a tile of stored rows (each restricted to the requested columns), then write the
    // tile's columns as contiguous runs of our rows: both sides stay cache-friendly.
    constexpr int64_t kTile = 32;
    std::vector<float> tile(static_cast<size_t>(kTile * count));
    for (int64_t r0 = 0; r0 < stored_rows; r0 += kTile) {
      const int64_t n = std::min(kTile, stored_rows - r0);
      for (int64_t i = 0; i < n; ++i) {
        if (absl::Status s = decoder(r0 + i, first, first + count, tile.data() + i * count);
            !s.ok()) {
          return s;
        }
      }
      for (int64_t c = 0; c < count; ++c) {
        float* dst = out + c * stored_rows + r0;
        for (int64_t i = 0; i < n; ++i) dst[i] = tile[static_cast<size_t>(i * count + c)];
      }
    }
    return absl::OkStatus();
  };
  return t;
}

std::vector<int64_t> HalfSplitToInterleavedRows(int64_t n_heads, int64_t head_dim) {
  std::vector<int64_t> source(static_cast<size_t>(n_heads * head_dim));
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    for (int64_t j = 0; j < half; ++j) {
      for (int64_t k = 0; k < 2; ++k) {
        source[static_cast<size_t>(h * head_dim + 2 * j + k)] = h * head_dim + k * half + j;
      }
    }
  }
  return source;
}

}  // namespace pinfer
