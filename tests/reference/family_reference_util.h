// The check of the OPT and Falcon reference tests: reference_check.h's, on a checkpoint the test
// wrote itself (tests/model/opt_fixture.h, falcon_fixture.h), for prompts of 1, 7 and 40 tokens
// and 12 greedy tokens.
//
// Tolerance: the reference computes in double, pinfer in f32 with an f32 KV cache, through two
// layers of LayerNorm, attention and a 256-neuron FFN: observed differences are below 1e-6 of the
// row's largest |logit| (each check prints its own). kFamilyTolerance (2e-5 of it, absolute, per
// position) is some 30 times that and far below what a wrong position offset, a missing bias or a
// wrong QKV split does (errors of 0.1 and more).
#pragma once

#include <string>

#include "tests/reference/reference_check.h"

namespace pinfer::testing {

inline constexpr double kFamilyTolerance = 2e-5;

// Converts the HF checkpoint in `hf_dir` with pi-convert into `pi_path` and compares (gtest
// expectations). `name` labels the failures.
inline void CheckFamilyAgainstReference(const std::string& name, const std::string& hf_dir,
                                        const std::string& pi_path) {
  CheckConvertedAgainstReference(name, hf_dir, hf_dir, pi_path,
                                 Plan{.greedy = 12, .tolerance = kFamilyTolerance, .seed = 7});
}

}  // namespace pinfer::testing
