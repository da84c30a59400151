#include "runtime/text/byte_level_bpe.h"

#include <algorithm>
#include <array>
#include <queue>

#include "absl/strings/str_cat.h"
#include "format/strings.h"

namespace pinfer {
namespace {

// Code point of each byte in GPT-2's bytes_to_unicode: the printable Latin-1 bytes stand for
// themselves, the others (controls, space, DEL, NBSP, soft hyphen) for 256, 257, ... in order.
std::array<uint32_t, 256> ByteCodePoints() {
  std::array<uint32_t, 256> cpt{};
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
    cpt[b] = printable ? b : next++;
  }
  return cpt;
}

std::string Utf8Of(uint32_t cpt) {  // code points below 0x800 only: all the map holds
  if (cpt < 0x80) return std::string(1, static_cast<char>(cpt));
  return {static_cast<char>(0xc0 | (cpt >> 6)), static_cast<char>(0x80 | (cpt & 0x3f))};
}

const std::array<std::string, 256>& ByteChars() {
  static const std::array<std::string, 256> chars = [] {
    std::array<std::string, 256> out;
    const std::array<uint32_t, 256> cpt = ByteCodePoints();
    for (int b = 0; b < 256; ++b) out[b] = Utf8Of(cpt[b]);
    return out;
  }();
  return chars;
}

const absl::flat_hash_map<std::string, uint8_t>& CharBytes() {
  static const auto* map = [] {
    auto* out = new absl::flat_hash_map<std::string, uint8_t>();
    for (int b = 0; b < 256; ++b) (*out)[ByteChars()[b]] = static_cast<uint8_t>(b);
    return out;
  }();
  return *map;
}

// Bytes of the UTF-8 sequence that starts with `lead`, as llama.cpp's unicode_len_utf8 judges it.
size_t Utf8Length(char lead) {
  static constexpr size_t kLengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLengths[static_cast<uint8_t>(lead) >> 4];
}

struct Symbol {
  int prev;
  int next;
  size_t offset;
  size_t length;  // 0: merged into its left neighbour
};

// A candidate merge; `length` is the merged length when queued (stale if either side changed).
struct Bigram {
  int left;
  int right;
  int rank;
  size_t length;
};

// Lowest rank first; among equal ranks the leftmost first (llama.cpp's llm_bigram_bpe order).
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

int32_t Lookup(const ByteLevelBpe::PieceIndex& pieces, std::string_view piece) {
  auto it = pieces.find(Sv(piece));
  return it == pieces.end() ? -1 : it->second;
}

}  // namespace

const std::string& ByteToBpeChar(uint8_t byte) { return ByteChars()[byte]; }

std::string BpePieceToBytes(std::string_view piece) {
  std::string bytes;
  bytes.reserve(piece.size());
  const auto& char_bytes = CharBytes();
  for (size_t i = 0; i < piece.size();) {
    const size_t length = std::min(Utf8Length(piece[i]), piece.size() - i);
    const std::string_view ch = piece.substr(i, length);
    auto it = char_bytes.find(Sv(ch));
    if (it != char_bytes.end()) {
      bytes.push_back(static_cast<char>(it->second));
    } else {
      bytes.append(ch);
    }
    i += length;
  }
  return bytes;
}

absl::StatusOr<ByteLevelBpe> ByteLevelBpe::Create(const Vocabulary& vocabulary) {
  ByteLevelBpe bpe;
  absl::StatusOr<BpePreTokenizer> pre = BpePreTokenizer::Create(vocabulary.pre_tokenizer);
  if (!pre.ok()) return pre.status();
  bpe.pre_tokenizer_ = *std::move(pre);
  // The merges are well formed (Vocabulary::Validate): "left right" is the lookup key as it is.
  bpe.merge_rank_.reserve(vocabulary.merges.size());
  for (size_t rank = 0; rank < vocabulary.merges.size(); ++rank) {
    const std::string& merge = vocabulary.merges[rank];
    // A repeated merge keeps its first rank, as in llama.cpp.
    bpe.merge_rank_.emplace(merge, static_cast<int>(rank));
  }
  return bpe;
}

int ByteLevelBpe::Rank(std::string_view left, std::string_view right) const {
  // Symbols are spelled in the byte alphabet, which has no space: "left right" is unambiguous.
  std::string key;
  key.reserve(left.size() + right.size() + 1);
  key.append(left).append(" ").append(right);
  auto it = merge_rank_.find(key);
  return it == merge_rank_.end() ? -1 : it->second;
}

void ByteLevelBpe::EncodeWord(const std::string& word, const PieceIndex& pieces,
                              std::vector<int32_t>& out) const {
  std::vector<Symbol> symbols;
  if (pre_tokenizer_.family().ignore_merges && Lookup(pieces, word) >= 0) {
    symbols.push_back({-1, -1, 0, word.size()});
  } else {
    for (size_t offset = 0; offset < word.size();) {
      const size_t length = std::min(Utf8Length(word[offset]), word.size() - offset);
      const int index = static_cast<int>(symbols.size());
      symbols.push_back(
          {index - 1, offset + length == word.size() ? -1 : index + 1, offset, length});
      offset += length;
    }
  }
  const std::string_view text = word;
  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols[left];
    const Symbol& r = symbols[right];
    const int rank = Rank(text.substr(l.offset, l.length), text.substr(r.offset, r.length));
    if (rank < 0) return;
    queue.push({left, right, rank, l.length + r.length});
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
  for (int i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) {
    const std::string_view piece = text.substr(symbols[i].offset, symbols[i].length);
    const int32_t token = Lookup(pieces, piece);
    if (token >= 0) {
      out.push_back(token);
      continue;
    }
    for (char byte : piece) {  // llama.cpp: each byte of the spelling that is itself a piece
      const int32_t byte_token = Lookup(pieces, std::string_view(&byte, 1));
      if (byte_token >= 0) out.push_back(byte_token);
    }
  }
}

void ByteLevelBpe::Encode(std::string_view text, const PieceIndex& pieces,
                          std::vector<int32_t>& out) const {
  for (const std::string& word : pre_tokenizer_.Split(text)) {
    std::string spelled;
    spelled.reserve(word.size() * 2);
    for (char byte : word) spelled += ByteToBpeChar(static_cast<uint8_t>(byte));
    EncodeWord(spelled, pieces, out);
  }
}

}  // namespace pinfer
