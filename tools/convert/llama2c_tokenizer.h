// Reads a llama2.c tokenizer.bin: int32 max_token_length, then per token f32 score, int32 length
// and the bytes. llama2.c writes SentencePiece pieces with "▁" replaced by a space and BOS/EOS as
// "\n<s>\n"/"\n</s>\n"; we restore the SentencePiece spelling so every source agrees.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "runtime/model/vocabulary.h"

namespace pinfer {

// `vocab_size` is the model's: the file must hold exactly that many tokens.
absl::StatusOr<Vocabulary> ReadLlama2cTokenizer(const std::string& path, int64_t vocab_size);

}  // namespace pinfer
