// The vocabulary of anything pinfer reads a model from, without its weights: a model.pi, a GGUF
// (llama.cpp's vocabulary-only files included, whatever the architecture), a HuggingFace directory,
// a tokenizer.json or tokenizer.model on its own, or a llama2.c checkpoint with its tokenizer.bin.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/model/vocabulary.h"

namespace pinfer {

// `tokenizer_path`: a llama2.c checkpoint's tokenizer.bin (required there), or a HuggingFace
// directory's tokenizer file in place of its own. Notes about the source go to `notes`.
absl::StatusOr<Vocabulary> ReadModelVocabulary(const std::string& path,
                                               const std::string& tokenizer_path,
                                               std::vector<std::string>& notes);

}  // namespace pinfer
