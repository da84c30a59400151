#include "runtime/text/tokenizer.h"

#include <algorithm>
#include <list>
#include <queue>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "format/strings.h"

namespace pinfer {
namespace {

constexpr std::string_view kSpaceMarker = "\xe2\x96\x81";  // "▁" U+2581

// Bytes of the UTF-8 sequence that starts with `lead`, judged from its top four bits as llama.cpp
// does (a stray continuation byte counts as one character).
size_t Utf8Length(char lead) {
  static constexpr size_t kLengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLengths[static_cast<uint8_t>(lead) >> 4];
}

// A span of the text being merged, linked to its neighbours; a symbol merged into its left
// neighbour keeps length 0.
struct Symbol {
  int prev;
  int next;
  size_t offset;
  size_t length;
};

// A candidate merge of two adjacent symbols. `length` is the merged byte length at the time it was
// queued: if either symbol changed since, the candidate is stale and skipped.
struct Bigram {
  int left;
  int right;
  float score;
  size_t length;
};

// Highest score first; among equal scores the leftmost first.
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

// A piece of the input before BPE: raw text, or a special token cut out of it.
struct Fragment {
  int32_t token = -1;  // -1: raw text
  std::string_view text;
};

}  // namespace

absl::StatusOr<Tokenizer> Tokenizer::Create(const Vocabulary& vocabulary) {
  if (absl::Status s = vocabulary.Validate(); !s.ok()) return s;
  Tokenizer tokenizer(vocabulary);
  const int32_t n = tokenizer.size();
  tokenizer.piece_to_token_.reserve(static_cast<size_t>(n));
  for (int32_t id = 0; id < n; ++id) {
    // A repeated piece maps to its last id, as in llama.cpp.
    tokenizer.piece_to_token_[vocabulary.pieces[id]] = id;
    const TokenType t = tokenizer.type(id);
    if (t == TokenType::kControl || t == TokenType::kUnknown || t == TokenType::kUserDefined) {
      if (!vocabulary.pieces[id].empty()) tokenizer.special_tokens_.push_back(id);
    }
  }
  std::stable_sort(tokenizer.special_tokens_.begin(), tokenizer.special_tokens_.end(),
                   [&](int32_t a, int32_t b) {
                     return vocabulary.pieces[a].size() > vocabulary.pieces[b].size();
                   });
  if (vocabulary.byte_level()) {
    absl::StatusOr<ByteLevelBpe> bpe = ByteLevelBpe::Create(vocabulary);
    if (!bpe.ok()) return bpe.status();
    tokenizer.bpe_ = std::make_shared<const ByteLevelBpe>(*std::move(bpe));
    for (std::string_view text : {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                  "<|endoftext|>", "<|eom_id|>", "<EOT>"}) {
      const int32_t id = tokenizer.PieceToToken(text);
      if (id >= 0 && tokenizer.type(id) == TokenType::kControl) {
        tokenizer.end_of_turn_.push_back(id);
      }
    }
    return tokenizer;
  }
  for (int byte = 0; byte < 256; ++byte) {
    int32_t id = tokenizer.PieceToToken(absl::StrFormat("<0x%02X>", byte));
    if (id < 0) id = tokenizer.PieceToToken(std::string(1, static_cast<char>(byte)));
    tokenizer.byte_tokens_[byte] = id >= 0 ? id : vocabulary.unk_id;
  }
  return tokenizer;
}

int32_t Tokenizer::PieceToToken(std::string_view piece) const {
  auto it = piece_to_token_.find(Sv(piece));
  return it == piece_to_token_.end() ? -1 : it->second;
}

void Tokenizer::EncodeFragment(std::string_view raw, std::vector<int32_t>& out) const {
  if (bpe_) {
    bpe_->Encode(raw, piece_to_token_, out);
    return;
  }
  const std::string text = absl::StrReplaceAll(Sv(raw), {{" ", Sv(kSpaceMarker)}});
  std::vector<Symbol> symbols;
  for (size_t offset = 0; offset < text.size();) {
    const size_t length = std::min(Utf8Length(text[offset]), text.size() - offset);
    const int index = static_cast<int>(symbols.size());
    symbols.push_back({index - 1, offset + length == text.size() ? -1 : index + 1, offset, length});
    offset += length;
  }
  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const size_t length = symbols[left].length + symbols[right].length;
    const int32_t token = PieceToToken(std::string_view(text).substr(symbols[left].offset, length));
    if (token < 0) return;
    queue.push({left, right, vocabulary_.scores[token], length});
  };
  for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const Bigram bigram = queue.top();
    queue.pop();
    Symbol& left = symbols[bigram.left];
    Symbol& right = symbols[bigram.right];
    if (left.length == 0 || right.length == 0 || left.length + right.length != bigram.length) {
      continue;  // stale: one side was merged elsewhere since this pair was queued
    }
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = bigram.left;
    try_add(left.prev, bigram.left);
    try_add(bigram.left, left.next);
  }

  // Every merge produced a vocabulary piece, so a final symbol is either a piece or one unmerged
  // character that is not: that one falls back to its bytes. (SentencePiece's re-segmentation of
  // merged symbols that are not pieces therefore never applies here.)
  for (int i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) {
    const std::string_view piece =
        std::string_view(text).substr(symbols[i].offset, symbols[i].length);
    const int32_t token = PieceToToken(piece);
    if (token >= 0) {
      out.push_back(token);
      continue;
    }
    for (char byte : piece) out.push_back(byte_tokens_[static_cast<uint8_t>(byte)]);
  }
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool add_special,
                                       bool parse_special) const {
  return EncodeFrom(text, add_special, parse_special, /*at_start=*/true);
}

std::vector<int32_t> Tokenizer::EncodeContinuation(std::string_view text,
                                                   bool parse_special) const {
  return EncodeFrom(text, /*add_bos=*/false, parse_special, /*at_start=*/false);
}

std::vector<int32_t> Tokenizer::EncodeFrom(std::string_view text, bool add_bos, bool parse_special,
                                           bool at_start) const {
  // Cut the special pieces out of the text, longest first.
  std::list<Fragment> fragments;
  if (!text.empty()) fragments.push_back({-1, text});
  for (int32_t special : special_tokens_) {
    const TokenType t = type(special);
    if (!parse_special && (t == TokenType::kControl || t == TokenType::kUnknown)) continue;
    const std::string& piece = vocabulary_.pieces[special];
    for (auto it = fragments.begin(); it != fragments.end();) {
      if (it->token >= 0) {
        ++it;
        continue;
      }
      size_t match;
      while ((match = it->text.find(piece)) != std::string_view::npos) {
        if (match > 0) fragments.insert(it, {-1, it->text.substr(0, match)});
        fragments.insert(it, {special, {}});
        it->text.remove_prefix(match + piece.size());
      }
      it = it->text.empty() ? fragments.erase(it) : std::next(it);
    }
  }

  std::vector<int32_t> out;
  if (add_bos && vocabulary_.add_bos) out.push_back(vocabulary_.bos_id);
  bool after_special = at_start;  // the start counts as following a special token
  for (const Fragment& fragment : fragments) {
    if (fragment.token >= 0) {
      out.push_back(fragment.token);
      after_special = true;
      continue;
    }
    if (vocabulary_.add_space_prefix && after_special && !bpe_) {
      EncodeFragment(absl::StrCat(" ", Sv(fragment.text)), out);
    } else {
      EncodeFragment(fragment.text, out);
    }
    after_special = false;
  }
  return out;
}

std::string Tokenizer::TokenToPiece(int32_t token, bool special) const {
  if (token < 0 || token >= size()) return "";
  const std::string& piece = vocabulary_.pieces[token];
  switch (type(token)) {
    case TokenType::kNormal:
      if (bpe_) return BpePieceToBytes(piece);
      return absl::StrReplaceAll(piece, {{Sv(kSpaceMarker), " "}});
    case TokenType::kByte: {
      if (bpe_) return "";  // llama.cpp renders no byte pieces of a BPE vocabulary
      int byte = 0;
      if (piece.size() == 6 && piece.starts_with("<0x") &&
          absl::SimpleHexAtoi(absl::string_view(piece).substr(3, 2), &byte)) {
        return std::string(1, static_cast<char>(byte));
      }
      return piece;  // a byte token spelled as the byte itself
    }
    case TokenType::kUserDefined:
      return piece;
    case TokenType::kControl:
    case TokenType::kUnknown:
      return special ? piece : "";
    case TokenType::kUnused:
      return "";
  }
  return "";
}

std::string Tokenizer::Decode(std::span<const int32_t> tokens, bool remove_special,
                              bool unparse_special) const {
  bool strip_space = vocabulary_.add_space_prefix && !bpe_;
  if (remove_special && vocabulary_.add_bos && !tokens.empty() &&
      tokens.front() == vocabulary_.bos_id) {
    strip_space = false;
    tokens = tokens.subspan(1);
  }
  std::string text;
  for (int32_t token : tokens) {
    std::string piece = TokenToPiece(token, unparse_special);
    if (strip_space && !piece.empty() && piece.front() == ' ') piece.erase(0, 1);
    strip_space = false;
    text += piece;
  }
  return text;
}

}  // namespace pinfer
