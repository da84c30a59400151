// The shared check of the OPT and Falcon reference tests: pinfer's converted
// model against torch_reference (torch_reference.h) on the same HF checkpoint,
// for prompts of 1, 7 and 40 tokens: the logits of every prompt position
// (batched passes of 16), of each greedy decode step (one token a pass), and
// the greedy chain itself.
//
// Tolerance: the reference computes in double, pinfer in f32 with an f32 KV cache, through two
// layers of LayerNorm, attention and a 256-neuron FFN: observed differences are below 1e-6 of the
// row's largest |logit| (each check prints its own). kFamilyTolerance (2e-5 of it, absolute, per
// position) is some 30 times that and far below what a wrong position offset, a missing bias or a
// wrong QKV split does (errors of 0.1 and more).
#pragma once

#include <string>

namespace pinfer::testing {

inline constexpr double kFamilyTolerance = 2e-5;

// Converts the HF checkpoint in `hf_dir` with pi-convert into `pi_path` and
// compares (gtest expectations). `name` labels the failures.
void CheckFamilyAgainstReference(const std::string& name, const std::string& hf_dir,
                                 const std::string& pi_path);

}  // namespace pinfer::testing
