// The tokenizer embedded in model.pi: a SentencePiece-style vocabulary (pieces, scores, types and
// special ids), stored as metadata under "tokenizer.*". pi-convert fills it from llama2.c
// tokenizer.bin, GGUF metadata, tokenizer.model or tokenizer.json; runtime/text encodes with it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "format/metadata.h"

namespace pinfer {

// GGUF's token types (llama_token_type), which SentencePiece's piece types map onto.
enum class TokenType : int32_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,  // byte-fallback piece "<0xXX>"
};

struct Vocabulary {
  std::string model = "llama";  // SentencePiece BPE with byte fallback (the only one for now)
  std::vector<std::string> pieces;  // "▁" (U+2581) stands for a space, as in SentencePiece
  std::vector<float> scores;        // merge priority: higher merges first
  std::vector<int32_t> types;       // TokenType values
  int32_t bos_id = 1;
  int32_t eos_id = 2;
  int32_t unk_id = 0;
  int32_t pad_id = -1;  // -1: none
  bool add_bos = true;
  bool add_space_prefix = true;  // SentencePiece's add_dummy_prefix
  std::string chat_template;     // Jinja text from GGUF/HF, empty when unknown

  size_t size() const { return pieces.size(); }
  absl::Status Validate() const;
  void ToMetadata(Metadata& metadata) const;
  static absl::StatusOr<Vocabulary> FromMetadata(const Metadata& metadata);
};

}  // namespace pinfer
