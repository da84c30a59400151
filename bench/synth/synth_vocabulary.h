// The tokenizer of a synthetic model: the 32000-piece Llama 2 vocabulary (a real SentencePiece BPE
// vocabulary with byte fallback, so pi-run and llama.cpp can tokenize any prompt), cut to the
// shape's vocabulary size or extended to it.
//   vocab < 32000: the first `vocab` pieces. Ids 0-2 are <unk>, <s>, </s>, ids 3-258 the 256 byte
//     pieces, then merges in priority order, so any prefix of at least 259 pieces still encodes any
//     text (with fewer merges).
//   vocab > 32000: pieces "<synth_unused_N>" of type unused fill the rest (Falcon-40B's 65024).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/model/vocabulary.h"

namespace pinfer::synth {

// tests/data/tokenizers/llama2_tokenizer.bin of the source tree pi-synth was built from.
std::string DefaultTokenizerPath();

// Reads a llama2.c tokenizer.bin of the 32000-piece Llama 2 vocabulary and fits it to vocab_size.
absl::StatusOr<Vocabulary> SyntheticVocabulary(const std::string& llama2_tokenizer_path,
                                               int64_t vocab_size);

}  // namespace pinfer::synth
