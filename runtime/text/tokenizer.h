// SentencePiece-style BPE with byte fallback over the vocabulary embedded in model.pi, behaving
// exactly like llama.cpp's SPM tokenizer (so that prompts, perplexities and golden outputs compare
// token for token):
//   - Encode: special tokens are cut out of the text first (user-defined pieces always, control and
//     unknown pieces only with parse_special); every remaining text fragment that follows the start
//     or a special token gets a leading space when the vocabulary says add_space_prefix; spaces
//     become "▁" (U+2581); the fragment is split into UTF-8 characters, and adjacent symbols whose
//     concatenation is a vocabulary piece are merged, highest piece score first (ties: leftmost
//     first); symbols that are not pieces are emitted as their bytes' <0xXX> tokens. BOS is
//     prepended when requested and the vocabulary says add_bos.
//   - Decode: normal pieces with "▁" turned back into spaces, byte pieces as their byte, control
//     and unknown pieces only when asked; the space that Encode added is dropped from the first
//     piece unless the sequence starts with a BOS that Decode removes (llama.cpp's rule).
// A byte-level BPE vocabulary (model "gpt2") goes through the same special-token cutting and BOS
// rule, and encodes each text fragment with ByteLevelBpe (byte_level_bpe.h: the family's
// pre-tokenizer, merges by rank, no space prefix); its normal pieces decode through the byte
// alphabet. Decode gives the text exactly (llama.cpp's clean_spaces, which drops the space before
// punctuation, is not applied).
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "runtime/model/vocabulary.h"
#include "runtime/text/byte_level_bpe.h"

namespace pinfer {

class Tokenizer {
 public:
  // Fails when the vocabulary is invalid. A byte without a "<0xXX>" piece falls back to the piece
  // made of that single byte, else to the unknown token.
  static absl::StatusOr<Tokenizer> Create(const Vocabulary& vocabulary);

  // `add_special`: prepend BOS when the vocabulary's add_bos says so (llama.cpp's add_special).
  // `parse_special`: recognise control pieces such as "<s>" written in the text.
  std::vector<int32_t> Encode(std::string_view text, bool add_special = true,
                              bool parse_special = false) const;
  // Text that continues a sequence already begun (a chat's next turn after the tokens of the last
  // one): no BOS, and its start does not count as the start of the text, so the first fragment
  // gets no space prefix; fragments after a special piece still do, as in Encode.
  std::vector<int32_t> EncodeContinuation(std::string_view text, bool parse_special = false) const;

  // The bytes one token stands for in generated text. Control and unknown tokens give "" unless
  // `special`. A token outside the vocabulary gives "".
  std::string TokenToPiece(int32_t token, bool special = false) const;
  // llama.cpp's detokenize: `remove_special` drops a leading BOS (and then keeps the first piece's
  // space); `unparse_special` renders control and unknown tokens as their text. (llama.cpp also
  // drops a trailing EOS for vocabularies that add one; SentencePiece Llamas never do.)
  std::string Decode(std::span<const int32_t> tokens, bool remove_special = false,
                     bool unparse_special = false) const;

  const Vocabulary& vocabulary() const { return vocabulary_; }
  int32_t size() const { return static_cast<int32_t>(vocabulary_.size()); }
  int32_t bos() const { return vocabulary_.bos_id; }
  int32_t eos() const { return vocabulary_.eos_id; }
  bool add_bos() const { return vocabulary_.add_bos; }
  // Tokens that end a generation: EOS and, in byte-level vocabularies, the control tokens
  // llama.cpp recognises by their text as ends of a turn ("<|eot_id|>", "<|im_end|>", ...).
  bool IsEndOfGeneration(int32_t token) const {
    return token == vocabulary_.eos_id ||
           std::find(end_of_turn_.begin(), end_of_turn_.end(), token) != end_of_turn_.end();
  }
  // The token of a vocabulary piece, or -1.
  int32_t PieceToToken(std::string_view piece) const;

 private:
  explicit Tokenizer(const Vocabulary& vocabulary) : vocabulary_(vocabulary) {}
  TokenType type(int32_t token) const { return static_cast<TokenType>(vocabulary_.types[token]); }
  void EncodeFragment(std::string_view text, std::vector<int32_t>& out) const;
  std::vector<int32_t> EncodeFrom(std::string_view text, bool add_bos, bool parse_special,
                                  bool at_start) const;

  Vocabulary vocabulary_;
  absl::flat_hash_map<std::string, int32_t> piece_to_token_;
  int32_t byte_tokens_[256] = {};
  std::vector<int32_t> special_tokens_;  // control, unknown and user-defined; longest first
  std::shared_ptr<const ByteLevelBpe> bpe_;  // byte-level vocabularies only
  std::vector<int32_t> end_of_turn_;
};

}  // namespace pinfer
