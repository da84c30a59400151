#include "bench/synth/synth_vocabulary.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "tools/convert/llama2c_tokenizer.h"

namespace pinfer::synth {
namespace {

constexpr int64_t kLlama2VocabSize = 32000;
constexpr int64_t kMinVocabSize = 259;  // <unk>, <s>, </s> and the 256 byte pieces

}  // namespace

std::string DefaultTokenizerPath() { return PINFER_DEFAULT_TOKENIZER; }

absl::StatusOr<Vocabulary> SyntheticVocabulary(const std::string& path, int64_t vocab_size) {
  if (vocab_size < kMinVocabSize) {
    return absl::InvalidArgumentError(absl::StrCat("a vocabulary of ", vocab_size,
                                                   " tokens is too small: the byte fallback needs ",
                                                   kMinVocabSize));
  }
  if (!std::filesystem::exists(path)) {
    return absl::NotFoundError(
        absl::StrCat(path, ": no such file (the Llama 2 tokenizer.bin; pass --tokenizer)"));
  }
  absl::StatusOr<Vocabulary> vocabulary = ReadLlama2cTokenizer(path, kLlama2VocabSize);
  if (!vocabulary.ok()) return vocabulary.status();
  Vocabulary& v = *vocabulary;
  const auto n = static_cast<size_t>(vocab_size);
  if (n <= v.pieces.size()) {
    v.pieces.resize(n);
    v.scores.resize(n);
    v.types.resize(n);
  } else {
    const float lowest = *std::min_element(v.scores.begin(), v.scores.end());
    for (size_t i = v.pieces.size(); i < n; ++i) {
      v.pieces.push_back(absl::StrCat("<synth_unused_", i, ">"));
      v.scores.push_back(lowest - 1.0f);
      v.types.push_back(static_cast<int32_t>(TokenType::kUnused));
    }
  }
  if (absl::Status s = v.Validate(); !s.ok()) return s;
  return vocabulary;
}

}  // namespace pinfer::synth
