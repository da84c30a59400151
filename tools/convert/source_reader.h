// Recognises what a pi-convert source is and reads it with the right reader: a directory is a
// HuggingFace checkpoint, a file starting with "GGUF"/"PWRI" is GGUF, a file whose header reads
// as llama2.c is a llama2.c checkpoint. Anything else gets one line saying what was expected.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "tools/convert/activation_choice.h"
#include "tools/convert/source_model.h"

namespace pinfer {

struct SourceOptions {
  // llama2.c: the tokenizer.bin (required). HF: overrides the directory's tokenizer files.
  // GGUF: not used (the tokenizer is in the file).
  std::string tokenizer_path;
  ActivationFlags activations;
};

absl::StatusOr<SourceModel> ReadSource(const std::string& source, const SourceOptions& options);

}  // namespace pinfer
