// The tokenizer embedded in model.pi, stored as metadata under "tokenizer.*": a SentencePiece-style
// vocabulary (model "llama": pieces, scores, types and special ids) or a byte-level BPE one (model
// "gpt2", as GGUF names it: pieces spelled in GPT-2's byte alphabet, ranked merges and the
// pre-tokenizer's name). pi-convert fills it from llama2.c tokenizer.bin, GGUF metadata,
// tokenizer.model or tokenizer.json; runtime/text encodes with it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
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

// What a byte-level vocabulary's pre-tokenizer name means: the regular expressions that cut the
// text into words (runtime/text/bpe_pre_tokenizer.h runs them) and llama.cpp's per-family flags.
struct BpePreTokenizerFamily {
  std::string_view expressions[4];  // empty entries end the list
  bool ignore_merges = false;       // a word that is a vocabulary piece is emitted whole (Llama 3)
  bool add_bos = false;             // llama.cpp forces add_bos for this family (Llama 3)
};

// The family llama.cpp maps a tokenizer.ggml.pre `name` to, or null when llama.cpp does not know
// the name or pinfer does not carry its family (an empty name is llama.cpp's "default").
const BpePreTokenizerFamily* FindBpePreTokenizer(std::string_view name);

struct Vocabulary {
  // "llama": SentencePiece BPE with byte fallback; "gpt2": byte-level BPE.
  std::string model = "llama";
  // llama: "▁" (U+2581) stands for a space, as in SentencePiece. gpt2: each byte is spelled as
  // its GPT-2 bytes-to-unicode character ("Ġ" a space); special (added) tokens as their text.
  std::vector<std::string> pieces;
  std::vector<float> scores;   // llama: merge priority, higher merges first. gpt2: unused (0)
  std::vector<int32_t> types;  // TokenType values
  // gpt2 only: merges "left right", by rank (the first merges first), and the pre-tokenizer by
  // llama.cpp's tokenizer.ggml.pre name ("gpt-2", "falcon", "llama-bpe", "qwen2", ...; "" is
  // llama.cpp's "default").
  std::vector<std::string> merges;
  std::string pre_tokenizer;
  int32_t bos_id = 1;
  int32_t eos_id = 2;
  int32_t unk_id = 0;   // gpt2: -1 when the vocabulary has none
  int32_t pad_id = -1;  // -1: none
  bool add_bos = true;
  bool add_space_prefix = true;  // SentencePiece's add_dummy_prefix
  std::string chat_template;     // Jinja text from GGUF/HF, empty when unknown

  size_t size() const { return pieces.size(); }
  bool byte_level() const { return model == "gpt2"; }
  absl::Status Validate() const;
  // gpt2: every merge is "left right" of two pieces whose concatenation is a piece.
  absl::Status ValidateMerges() const;
  void ToMetadata(Metadata& metadata) const;
  static absl::StatusOr<Vocabulary> FromMetadata(const Metadata& metadata);
};

}  // namespace pinfer
