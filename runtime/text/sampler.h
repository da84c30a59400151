// Picks the next token from the logits, with llama.cpp's samplers applied in llama.cpp's default
// order:
//   repetition penalty → top-k → top-p → min-p → temperature → draw
//   - repetition penalty over the last `repeat_last_n` accepted tokens: a positive logit is divided
//     by the penalty, a negative one multiplied (1 = off);
//   - top-k keeps the k largest logits (k <= 0: all);
//   - top-p keeps the smallest prefix of the sorted distribution whose probability reaches p
//     (p >= 1: all);
//   - min-p keeps tokens whose probability is at least min_p times the largest (min_p <= 0: all);
//   - temperature divides the logits; temperature <= 0 is greedy: the first largest logit after the
//     penalty, with no randomness.
// Draws use a 64-bit Mersenne Twister seeded with `seed`, converted to uniforms by our own code, so
// that one seed gives one sequence on every platform.
#pragma once

#include <cstdint>
#include <deque>
#include <random>
#include <span>
#include <vector>

#include "absl/status/status.h"

namespace pinfer {

struct SamplerParams {
  float temperature = 0.8f;
  int32_t top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  float repeat_penalty = 1.0f;
  int32_t repeat_last_n = 64;
  uint64_t seed = 0;

  // Names the offending flag (--temp, --top-k, ...) when a value is out of range.
  absl::Status Validate() const;
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& params);

  // Records a token of the context (prompt or generated) for the repetition penalty.
  void Accept(int32_t token);
  // Chooses a token from `logits` (one per vocabulary entry; -1 when empty). Does not Accept it.
  int32_t Sample(std::span<const float> logits);
  void Reset();

  const SamplerParams& params() const { return params_; }

 private:
  struct Candidate {
    int32_t token;
    float logit;
  };
  // Uniform in [0, 1) from 53 random bits.
  double NextUniform();

  SamplerParams params_;
  std::mt19937_64 rng_;
  std::deque<int32_t> recent_;
  std::vector<Candidate> candidates_;
  std::vector<double> probabilities_;
};

}  // namespace pinfer
