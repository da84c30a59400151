// Whether generated text is made of real words: the share of its words found in the bundled
// TinyStories text (what stories260K was trained on). A context shift that broke the KV cache
// (wrong positions, dropped rows read back) makes stories260K babble letter soup, which this tells
// apart from its ordinary stories.
#pragma once

#include <algorithm>
#include <cctype>
#include <set>
#include <string>
#include <vector>

#include "tests/runtime/test_models.h"

namespace pinfer::test {

// The lower-case words of a text (letters and apostrophes).
inline std::vector<std::string> Words(const std::string& text) {
  std::vector<std::string> words;
  std::string word;
  for (char ch : text + " ") {
    if (std::isalpha(static_cast<unsigned char>(ch)) || (ch == '\'' && !word.empty())) {
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    } else if (!word.empty()) {
      words.push_back(word);
      word.clear();
    }
  }
  return words;
}

// The words of tests/data/text/tinystories_valid_head.txt (read once).
inline const std::set<std::string>& StoryVocabulary() {
  static const std::set<std::string>* const vocabulary = [] {
    auto* words = new std::set<std::string>();
    for (std::string& w : Words(ReadRepoFile("tests/data/text/tinystories_valid_head.txt"))) {
      words->insert(std::move(w));
    }
    return words;
  }();
  return *vocabulary;
}

// The share of `words` found in StoryVocabulary() (0 for none).
inline double KnownWordShare(const std::vector<std::string>& words) {
  if (words.empty()) return 0.0;
  const std::set<std::string>& vocabulary = StoryVocabulary();
  const auto known = std::count_if(words.begin(), words.end(),
                                   [&](const std::string& w) { return vocabulary.count(w) > 0; });
  return static_cast<double>(known) / static_cast<double>(words.size());
}

}  // namespace pinfer::test
