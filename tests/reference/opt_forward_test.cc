// OPT against the LibTorch reference (opt_reference.cc): tiny random
// OPTForCausalLM checkpoints (tests/model/opt_fixture.h), tied under
// "model.decoder." and untied under the original "decoder." names; logits of
// prompts of 1, 7 and 40 tokens batched and decoded, and the greedy chain
// (family_reference_util.h).
#include "gtest/gtest.h"
#include "tests/convert/test_util.h"
#include "tests/model/opt_fixture.h"
#include "tests/reference/family_reference_util.h"

namespace pinfer {
namespace {

TEST(OptReferenceTest, TiedHeadMatchesTheReference) {
  const std::string dir = testing::ScratchDir("opt_tied");
  const testing::OptModel hf = testing::WriteOptModel(dir + "/hf");
  testing::CheckFamilyAgainstReference("opt tied", hf.dir, dir + "/opt.pi");
}

TEST(OptReferenceTest, UntiedHeadUnderTheOriginalNamesMatchesTheReference) {
  const std::string dir = testing::ScratchDir("opt_untied");
  const testing::OptModel hf =
      testing::WriteOptModel(dir + "/hf", {.tied = false, .prefix = "decoder.", .seed = 11});
  testing::CheckFamilyAgainstReference("opt untied", hf.dir, dir + "/opt.pi");
}

}  // namespace
}  // namespace pinfer
