// Small byte-level BPE vocabularies of our own, one per pre-tokenizer family, so that the
// byte-level tokenizer can be checked against llama.cpp's without committing anyone else's
// vocabulary.
//
// TrainBpeFixture learns merges from text the way BPE is trained (GPT-2, HF tokenizers): the text
// is cut into words by the family's pre-tokenizer, each word spelled in the byte alphabet, and the
// most frequent adjacent pair of symbols is merged, again and again (ties: the pair whose spelling
// sorts first), so the result is deterministic. The vocabulary is the 256 byte characters, then
// one piece per merge, then the family's special tokens. It is written as llama.cpp and HF write
// such vocabularies: a vocabulary-only GGUF (architecture gpt2, tokenizer.ggml.*) and a
// tokenizer.json with the family's real pre-tokenizer steps (tests/data/bpe holds the results and
// llama.cpp's ids for them; see its README).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace pinfer::testing {

struct BpeSpecialToken {
  std::string text;
  bool control = true;  // false: a user-defined (non-special added) token
};

struct BpeFixture {
  std::string pre;                        // llama.cpp's name: "gpt-2", "falcon", "llama-bpe", ...
  std::vector<std::string> pieces;        // by id
  std::vector<std::string> merges;        // "left right", by rank
  std::vector<BpeSpecialToken> specials;  // the last specials.size() pieces
  int32_t bos_id = 0;
  int32_t eos_id = 0;
  bool add_bos = false;  // what the GGUF says (llama-bpe: true, as Llama 3's files say)
};

// The first `limit` bytes of `text`, cut back to the end of a line (so that no UTF-8 character
// is cut): the corpus excerpts whose ids are golden.
std::string CorpusExcerpt(const std::string& text, size_t limit);

// What the committed fixtures were made from: kBpeFixtureMerges merges learnt on the first 120 KB
// of tests/data/text/tinystories_valid_head.txt and 40 KB of wikitext2_test.tokens.txt (for some
// non-ASCII text).
constexpr int kBpeFixtureMerges = 1000;
std::string BpeTrainingCorpus();
// The corpora whose excerpts (first 16 KB of tests/data/text/<name>.txt, cut at a line end) have
// golden ids, and an excerpt by name.
const std::vector<std::string>& BpeGoldenCorpora();
std::string BpeGoldenExcerpt(const std::string& name);

// The families the fixtures cover, by llama.cpp's name.
const std::vector<std::string>& BpeFixtureFamilies();

absl::StatusOr<BpeFixture> TrainBpeFixture(const std::string& pre, std::string_view corpus,
                                           int merges);

std::vector<uint8_t> BpeFixtureGguf(const BpeFixture& fixture);
// A tiny random-weight llama GGUF (1 layer, 16 wide) with the fixture as its tokenizer, for
// pi-convert / pi-run end to end.
std::vector<uint8_t> BpeFixtureLlamaGguf(const BpeFixture& fixture);
nlohmann::json BpeFixtureTokenizerJson(const BpeFixture& fixture);

}  // namespace pinfer::testing
