#include "tests/fuzz/source_checks.h"

#include <algorithm>
#include <vector>

#include "tests/fuzz/fuzz_checks.h"

namespace pinfer::fuzz {

void ExerciseSourceModel(const SourceModel& model) {
  if (model.config.Validate().ok()) RequireRunnableConfig(model.config);
  Require(static_cast<int64_t>(model.vocabulary.size()) == model.config.vocab_size,
          "the vocabulary does not have vocab_size tokens");
  ExerciseVocabulary(model.vocabulary);
  std::vector<float> rows;
  std::vector<uint8_t> native;
  for (const SourceTensor& t : model.tensors) {
    const int64_t n_rows = t.rows(), cols = t.cols();
    Require(n_rows >= 0 && cols > 0, "a tensor has an empty or negative shape");
    // A few rows at a time, as the converter streams them.
    const int64_t step = std::max<int64_t>(1, 4096 / cols);
    for (int64_t first = 0; first < n_rows; first += step) {
      const int64_t count = std::min(step, n_rows - first);
      rows.resize(static_cast<size_t>(count * cols));
      Require(t.read_rows(first, count, rows.data()).ok(), "read_rows fails on an accepted model");
      if (t.read_native) {
        absl::StatusOr<uint64_t> row_bytes = RowBytes(t.native_dtype, static_cast<uint64_t>(cols));
        Require(row_bytes.ok(), "a native dtype does not fit the row length");
        native.resize(static_cast<size_t>(*row_bytes * static_cast<uint64_t>(count)));
        Require(t.read_native(first, count, native).ok(), "read_native fails on an accepted model");
      }
    }
  }
}

}  // namespace pinfer::fuzz
