// The pre-tokenizer of a byte-level BPE vocabulary: the text is cut into words by the family's
// regular expressions before BPE merges within each word, as llama.cpp's unicode_regex_split does.
//
// A family (FindBpePreTokenizer in runtime/model/vocabulary.h) has a list of expressions applied
// in turn: the first cuts the text into its matches and the text
// between them, each later one cuts every piece the same way. A match never looks past the end of
// its piece (llama.cpp matches within each piece alone). The expressions are llama.cpp's and run
// with PCRE2 in UTF + UCP mode, so \p{L}, \p{N} and \s are Unicode classes.
//
// The text is first read as llama.cpp reads it: each byte that does not start a well-formed
// sequence becomes U+FFFD (the words then hold EF BF BD in its place).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/model/vocabulary.h"

namespace pinfer {

class BpePreTokenizer {
 public:
  // Compiles the family's expressions; fails on an unknown name.
  static absl::StatusOr<BpePreTokenizer> Create(std::string_view name);

  // The words of `text` (UTF-8, invalid bytes replaced as described above), in order; their
  // concatenation is the text.
  std::vector<std::string> Split(std::string_view text) const;

  const BpePreTokenizerFamily& family() const { return *family_; }

 private:
  struct Compiled;
  const BpePreTokenizerFamily* family_ = nullptr;
  std::shared_ptr<const Compiled> compiled_;  // shared: the tokenizer is copied by value
};

}  // namespace pinfer
