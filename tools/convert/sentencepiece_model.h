// Reads a SentencePiece tokenizer.model with the SentencePiece library.
//
// This header and its .cc include no Abseil: Debian's sentencepiece_processor.h declares its own
// `absl::string_view` alias, which clashes with Abseil's. Errors are plain strings; the caller
// wraps them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pinfer {

struct SentencePieceVocab {
  std::vector<std::string> pieces;
  std::vector<float> scores;
  // GGUF/llama token types (runtime/model/vocabulary.h TokenType): 1 normal, 2 unknown,
  // 3 control, 5 unused, 6 byte. The library does not expose user-defined pieces as a type; they
  // read as normal (HF added_tokens mark them, see hf_tokenizer.h).
  std::vector<int32_t> types;
  int32_t unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;  // -1: none
  bool add_dummy_prefix = true;
};

// Parses the bytes of a tokenizer.model (the caller reads the file, through format/file_access.h).
// Empty string on success, else the reason (without the path).
std::string LoadSentencePieceModel(const std::string& serialized, SentencePieceVocab* out);

}  // namespace pinfer
