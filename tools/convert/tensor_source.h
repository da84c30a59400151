// Building blocks for SourceTensor: a matrix as a source file stores it, and the three ways our
// layout can relate to it — the same rows, the rows reordered (q/k of HF checkpoints, whose RoPE
// pairs are half-split) or transposed (the FFN down projection, stored neuron-major by us).
// Readers describe where the bytes are; these functions do the decoding in bulk (whole rows and
// blocks, never element by element), so converting a multi-GB model is bounded by memory
// bandwidth, not by per-element calls.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "format/dtype.h"
#include "tools/convert/source_model.h"

namespace pinfer {

// A row-major matrix in a source file: `rows` rows of `cols` elements of a floating or quantized
// `dtype` (quantized blocks run along a row). A vector is one row.
struct StoredMatrix {
  std::span<const uint8_t> bytes;
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
};

// Checks that `bytes` holds exactly rows x cols elements of `dtype`; `what` names the tensor in
// errors ("model.safetensors: tensor 'x'").
absl::StatusOr<StoredMatrix> MakeStoredMatrix(std::span<const uint8_t> bytes, DType dtype,
                                              int64_t rows, int64_t cols, const std::string& what);

// Decodes columns [begin, end) of one stored row into `out` (end - begin floats).
using RowSegmentDecoder =
    std::function<absl::Status(int64_t row, int64_t begin, int64_t end, float* out)>;

// A decoder over a StoredMatrix (any alignment of the source bytes; partial blocks are handled).
RowSegmentDecoder StoredMatrixDecoder(const StoredMatrix& matrix);

// Our tensor is the stored matrix as it is: shape [rows, cols] (or [cols] when `vector`).
// read_native copies the stored bytes.
SourceTensor DirectTensor(std::string name, const StoredMatrix& matrix, bool vector = false);

// Our row i is stored row source_row[i]; read_native copies whole stored rows, so even quantized
// rows are reordered losslessly.
SourceTensor PermutedRowsTensor(std::string name, const StoredMatrix& matrix,
                                std::vector<int64_t> source_row);

// Our tensor is the transpose: shape [cols, rows], our row j = stored column j. Only read_rows:
// a quantized matrix must be decoded, transposed and encoded again (blocks run along the other
// axis), which costs a second rounding — the same thing PowerInfer's converter does.
SourceTensor TransposedTensor(std::string name, int64_t stored_rows, int64_t stored_cols,
                              DType native_dtype, RowSegmentDecoder decoder);

// HF checkpoints rotate the RoPE pairs (j, j + head_dim/2) of each head; we (like GGUF and
// llama2.c) rotate (2j, 2j + 1). Returns source_row for PermutedRowsTensor: our row
// h*head_dim + 2j + k is HF row h*head_dim + k*head_dim/2 + j (k = 0, 1).
std::vector<int64_t> HalfSplitToInterleavedRows(int64_t n_heads, int64_t head_dim);

}  // namespace pinfer
