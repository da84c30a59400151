// The check of reference_test.cc, shared by the families' tests: pinfer's logits and greedy
// chains on a converted tiny HF checkpoint against torch_reference's on the checkpoint itself.
//
// Tolerance: the reference computes in double, pinfer in f32 with an f32 KV cache, so what differs
// is f32 rounding through two layers (sums of 64-96 products, softmax, RMSNorm): observed at most
// 1e-5 for logits up to about 8 in magnitude (2e-6 of the largest). kReferenceTolerance (1e-4 of
// the largest |logit| of the position, absolute) is some 50 times that and still thousands of
// times smaller than what a wrong RoPE frequency does (rope_theta 10000 instead of 500000: errors
// of 0.2 to 4).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tests/convert/hf_fixture.h"

namespace pinfer::testing {

// The largest |pinfer - reference| of a position, over its largest |reference logit| (at least 1).
inline constexpr double kReferenceTolerance = 1e-4;

// What a check runs: prompts of these lengths, each followed by `greedy` greedy tokens, in sessions
// of `context` positions.
struct Plan {
  std::vector<int64_t> lengths = {1, 7, 40};
  int64_t greedy = 20;
  int64_t context = 64;
  double tolerance = kReferenceTolerance;  // of the position's largest |reference logit|
  uint32_t seed = 0;                       // of the prompts' random tokens
};

// Converts `spec`'s checkpoint and checks pinfer against the reference; `converted` (if given)
// gets the converted model's path. With `via_gguf`, pi-convert reads a GGUF written from the
// checkpoint in llama.cpp's layout (tests/convert/gguf_model.h: interleaved q/k, rope_freqs).
// Failures are test failures (gtest); `name` names the scratch directory.
void CheckAgainstReference(const std::string& name, const HfSpec& spec, const Plan& plan = {},
                           std::string* converted = nullptr, bool via_gguf = false);

// The check itself, for a checkpoint already written: `hf_dir` is what torch_reference reads,
// `input` what pi-convert converts into `pi` (the directory itself, or a GGUF made from it).
// Prints the largest difference seen, relative to its row's largest |logit|.
void CheckConvertedAgainstReference(const std::string& name, const std::string& hf_dir,
                                    const std::string& input, const std::string& pi,
                                    const Plan& plan);

}  // namespace pinfer::testing
