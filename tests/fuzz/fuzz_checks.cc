#include "tests/fuzz/fuzz_checks.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <utility>

#include "absl/numeric/int128.h"
#include "runtime/text/tokenizer.h"

namespace pinfer::fuzz {

void Require(bool ok, std::string_view what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz: property violated: %.*s\n", static_cast<int>(what.size()),
               what.data());
  std::abort();
}

int Rejected(const absl::Status& status) {
  static const bool trace = std::getenv("PINFER_FUZZ_TRACE") != nullptr;
  if (trace) {
    std::fprintf(stderr, "fuzz: rejected: %s\n", std::string(status.message()).c_str());
  }
  return 0;
}

void ExerciseVocabulary(const Vocabulary& vocabulary) {
  if (!vocabulary.Validate().ok()) return;
  absl::StatusOr<Tokenizer> tokenizer = Tokenizer::Create(vocabulary);
  Require(tokenizer.ok(), "Tokenizer::Create fails on a vocabulary that passes Validate()");
  // Spaces, multi-byte UTF-8, a stray continuation byte, control characters and the special
  // pieces a chat prompt writes: every branch of the encoder.
  static const std::string kText =
      "Hello world, <s>[INST] h\xc3\xa9llo \xe2\x96\x81x\x80\x01\n <|im_start|>user</s> 123";
  for (bool parse_special : {false, true}) {
    std::vector<int32_t> tokens = tokenizer->Encode(kText, /*add_special=*/true, parse_special);
    for (int32_t t : tokens)
      Require(t >= 0 && t < tokenizer->size(), "Encode gave an id outside the vocabulary");
    (void)tokenizer->Decode(tokens, /*remove_special=*/true, /*unparse_special=*/parse_special);
  }
  const int32_t probe[] = {-1, 0, tokenizer->size() - 1, tokenizer->size()};
  for (int32_t t : probe) (void)tokenizer->TokenToPiece(t, true);
}

void RequireRunnableConfig(const ModelConfig& c) {
  Require(c.Validate().ok(), "an accepted config fails ModelConfig::Validate()");
  // q_dim() and kv_dim() multiply in int64, and so do the matrix sizes everywhere after.
  const absl::int128 max = std::numeric_limits<int64_t>::max();
  for (const auto [a, b] : {std::pair{c.n_heads, c.head_dim}, std::pair{c.n_kv_heads, c.head_dim},
                            std::pair{c.vocab_size, c.dim}, std::pair{c.n_ff, c.dim}}) {
    Require(absl::int128(a) * b <= max, "a shape product of the config overflows int64");
  }
  Require(std::isfinite(c.rope_theta) && c.rope_theta > 0, "rope_theta is not finite and positive");
  Require(std::isfinite(c.rms_eps) && c.rms_eps > 0, "rms_eps is not finite and positive");
}

}  // namespace pinfer::fuzz
