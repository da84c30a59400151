// Byte-level BPE (GPT-2, Falcon, Llama 3, Qwen 2 ...), behaving exactly like llama.cpp's
// llm_tokenizer_bpe_session:
//   - the pre-tokenizer cuts the text into words (bpe_pre_tokenizer.h);
//   - each word's bytes are written as the printable characters of GPT-2's bytes-to-unicode map
//     (space -> "Ġ", newline -> "Ċ", ...), the alphabet the vocabulary pieces are spelled in;
//   - within a word, adjacent symbols (UTF-8 characters at first) are merged by merge rank, lowest
//     rank first, ties leftmost first; families with ignore_merges (Llama 3) emit a word that is
//     itself a piece whole;
//   - a final symbol that is not a piece falls back to its bytes' single-byte pieces (llama.cpp's
//     rule; a byte with no such piece is dropped).
// Decoding maps each character of a piece back to its byte.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "runtime/model/vocabulary.h"
#include "runtime/text/bpe_pre_tokenizer.h"

namespace pinfer {

// GPT-2's bytes_to_unicode: the character (as UTF-8) that stands for `byte` in piece spelling.
const std::string& ByteToBpeChar(uint8_t byte);
// The bytes a byte-level piece stands for; a character outside the map is kept as it is.
std::string BpePieceToBytes(std::string_view piece);

class ByteLevelBpe {
 public:
  using PieceIndex = absl::flat_hash_map<std::string, int32_t>;

  // `vocabulary` has passed Validate (known pre-tokenizer, well-formed merges).
  static absl::StatusOr<ByteLevelBpe> Create(const Vocabulary& vocabulary);

  // Appends the tokens of raw text (no special pieces in it); `pieces` is the vocabulary's piece
  // index (a repeated piece maps to its last id).
  void Encode(std::string_view text, const PieceIndex& pieces, std::vector<int32_t>& out) const;
  const BpePreTokenizer& pre_tokenizer() const { return pre_tokenizer_; }

 private:
  int Rank(std::string_view left, std::string_view right) const;
  void EncodeWord(const std::string& word, const PieceIndex& pieces,
                  std::vector<int32_t>& out) const;

  BpePreTokenizer pre_tokenizer_;
  absl::flat_hash_map<std::string, int> merge_rank_;  // "left right" -> rank
};

}  // namespace pinfer
