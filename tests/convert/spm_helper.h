// SentencePiece for tests, in an Abseil-free translation unit (Debian's sentencepiece headers
// clash with Abseil's string_view): trains a real tokenizer.model the way Llama's was made
// (BPE, byte fallback, digits split, dummy prefix), and encodes with it.
#pragma once

#include <string>
#include <vector>

namespace pinfer::testing {

// Trains on the first `sentences` lines of `text_path`. Empty string on success, else the error.
std::string TrainLlamaStyleSentencePiece(const std::string& text_path,
                                         const std::string& model_prefix, int vocab_size,
                                         int sentences);

struct SpmPiece {
  std::string piece;
  float score;
};
// Pieces and scores as the SentencePiece library reports them; empty on failure.
std::vector<SpmPiece> SentencePiecePieces(const std::string& model_path);
// Ids of `text`; empty on failure.
std::vector<int> SentencePieceEncode(const std::string& model_path, const std::string& text);

}  // namespace pinfer::testing
