// Turns a SourceModel into model.pi: picks each tensor's output dtype, streams rows through
// encode/quantize (or copies native bytes when no conversion is needed), records hparams,
// vocabulary and provenance, and writes atomically.
#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "format/dtype.h"
#include "tools/convert/source_model.h"

namespace pinfer {

struct ConvertOptions {
  // Output dtype of the weight matrices; norms (1-D) always stay f32. Unset: each tensor keeps
  // its source dtype.
  std::optional<DType> dtype;
  std::string command_line;  // provenance.arguments
  bool progress = true;
};

struct ConvertReport {
  uint64_t output_bytes = 0;
  double seconds = 0;
  int tensors = 0;
};

absl::StatusOr<ConvertReport> ConvertModel(SourceModel& source, const std::string& output_path,
                                           const ConvertOptions& options);

// The dtype a tensor gets: f32 for 1-D tensors (norms), else options.dtype or its native dtype.
DType OutputDType(const SourceTensor& tensor, const ConvertOptions& options);

}  // namespace pinfer
