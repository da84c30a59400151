// The run-time target choice: the dispatcher picks the best supported target, a named one can be
// pinned (and the choice restored), an unknown name is rejected with the list of valid ones.
#include "runtime/cpu/simd_targets.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/cpu/kernels.h"

namespace pinfer::cpu {
namespace {

TEST(SimdTargetsTest, BestSupportedTargetIsChosen) {
  const std::vector<std::string> targets = SupportedSimdTargets();
  ASSERT_FALSE(targets.empty());
  EXPECT_EQ(SimdTargetName(), targets.front());
}

TEST(SimdTargetsTest, ForceAndRestore) {
  const std::vector<std::string> targets = SupportedSimdTargets();
  for (const std::string& target : targets) {
    ASSERT_TRUE(ForceSimdTarget(target).ok());
    EXPECT_EQ(SimdTargetName(), target);
  }
  ASSERT_TRUE(ForceSimdTarget("").ok());
  EXPECT_EQ(SimdTargetName(), targets.front());
}

TEST(SimdTargetsTest, UnknownTargetIsRejected) {
  const absl::Status status = ForceSimdTarget("AVX9000");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(status.message()).find("AVX9000"), std::string::npos);
  EXPECT_NE(std::string(status.message()).find(SimdTargetName()), std::string::npos);
}

}  // namespace
}  // namespace pinfer::cpu
