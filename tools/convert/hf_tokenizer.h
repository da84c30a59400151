// The tokenizer of a HuggingFace llama-family checkpoint as our Vocabulary.
//
// Sources, in order of preference:
//   tokenizer.model   SentencePiece (read with the SentencePiece library): pieces, scores, types,
//                     special ids, add_dummy_prefix.
//   tokenizer.json    HF "tokenizers" BPE with byte fallback (Llama-2/Mistral style). It has no
//                     scores, only ranked merges; a piece made by merge number r gets score -r, so
//                     "merge the best-scoring pair" (our encoder) is exactly "apply the
//                     lowest-ranked merge" (HF's).
//                     Or byte-level BPE (a ByteLevel pre-tokenizer/decoder: GPT-2, Falcon,
//                     Llama 3, Qwen 2): our "gpt2" vocabulary with the merges as they are and
//                     the pre-tokenizer named as llama.cpp names it, recognised by its steps.
// Then tokenizer_config.json adds add_bos_token, chat_template and added_tokens_decoder (special
// added tokens become control tokens, the others user-defined), and config.json's bos/eos/pad ids
// override the tokenizer's.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/model/vocabulary.h"
#include "tools/convert/hf_config.h"

namespace pinfer {

absl::StatusOr<Vocabulary> ReadSentencePieceTokenizer(const std::string& path);
absl::StatusOr<Vocabulary> ReadTokenizerJson(const std::string& path);

// `explicit_path` (--tokenizer) wins over the files in `dir`. `model_vocab_size` is the number of
// embedding rows: a shorter vocabulary is padded with unused "[PAD<i>]" tokens (as llama.cpp
// does), a longer one is an error.
absl::StatusOr<Vocabulary> ReadHfTokenizer(const std::string& dir, const std::string& explicit_path,
                                           const HfConfig& config, int64_t model_vocab_size,
                                           std::vector<std::string>& notes);

}  // namespace pinfer
