// Turns a SourceModel into model.pi: picks each tensor's output dtype, streams rows through
// encode/quantize (or copies native bytes when no conversion is needed), records hparams,
// vocabulary and provenance, and writes atomically.
#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "format/dtype.h"
#include "format/quant.h"
#include "tools/convert/source_model.h"

namespace pinfer {

struct ConvertOptions {
  // Output dtype of the weight matrices; norms (1-D) always stay f32. Unset: each tensor keeps
  // its source dtype.
  std::optional<DType> dtype;
  // q4_0 scales: the error-minimising search by default; kGgml reproduces llama.cpp's blocks.
  Q4Scales q4_scales = Q4Scales::kMinError;
  // With dtype q4_0 the classifier (`output`, or `token_embd` when tied) is stored as q8_0, as
  // llama.cpp's Q4_0 keeps it at 6 bits: it decides every logit, and costs one matrix of many.
  // `pure` stores it as q4_0 too (llama-quantize --pure).
  bool pure = false;
  // true (pi-convert --q4_0x16): the q4_0 matrices read by dot products (attn_q/k/v/output,
  // ffn_gate, ffn_up, the classifier) are stored as q4_0x16, the same blocks reordered for 512-bit
  // integer dots (format/README.md); ffn_down_t, read by the transposed product, stays q4_0. Off
  // by default: it makes small batches cheap but single-sequence decode slower here
  // (bench/e2e/q4_0_layouts.sh).
  bool q4_0x16 = false;
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

// The dtype a tensor gets: f32 for 1-D tensors (norms), q8_0 for the classifier of a q4_0 model
// (unless options.pure), else options.dtype or its native dtype; q4_0 becomes q4_0x16 for the
// matrices read by dot products (unless !options.q4_0x16). `classifier`: the tensor computes the
// logits (`output`, or `token_embd` of a model with tied embeddings).
DType OutputDType(const SourceTensor& tensor, bool classifier, const ConvertOptions& options);

}  // namespace pinfer
