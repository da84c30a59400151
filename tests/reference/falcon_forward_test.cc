// Falcon against the LibTorch reference (falcon_reference.cc): tiny random
// FalconForCausalLM checkpoints (tests/model/falcon_fixture.h) in Falcon-7B's
// layout (multi-query, one LayerNorm, tied) and Falcon-40B's
// (new_decoder_architecture: 2 KV groups, ln_attn/ln_mlp, untied, theta
// 500000); logits of prompts of 1, 7 and 40 tokens batched and decoded, and the
// greedy chain.
#include "gtest/gtest.h"
#include "tests/convert/test_util.h"
#include "tests/model/falcon_fixture.h"
#include "tests/reference/family_reference_util.h"

namespace pinfer {
namespace {

TEST(FalconReferenceTest, Falcon7BLayoutMatchesTheReference) {
  const std::string dir = testing::ScratchDir("falcon7b");
  const testing::FalconModel hf = testing::WriteFalconModel(dir + "/hf");
  testing::CheckFamilyAgainstReference("falcon-7b layout", hf.dir, dir + "/falcon.pi");
}

TEST(FalconReferenceTest, Falcon40BLayoutMatchesTheReference) {
  const std::string dir = testing::ScratchDir("falcon40b");
  testing::FalconSpec spec;
  spec.new_decoder_architecture = true;
  spec.n_kv_heads = 2;
  spec.tied = false;
  spec.rope_theta = 500000.0;
  spec.seed = 8;
  const testing::FalconModel hf = testing::WriteFalconModel(dir + "/hf", spec);
  testing::CheckFamilyAgainstReference("falcon-40b layout", hf.dir, dir + "/falcon.pi");
}

}  // namespace
}  // namespace pinfer
