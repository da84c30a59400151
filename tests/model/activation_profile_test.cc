#include "runtime/model/activation_profile.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace pinfer {
namespace {

ActivationProfile Sample() {
  ActivationProfile p;
  p.model_digest = "0123456789abcdef";
  p.n_layers = 2;
  p.n_ff = 3;
  p.tokens = 10;
  p.context = 64;
  p.datasets = {"a.txt"};
  p.fire_count = {10, 5, 0, 1, 2, 3};
  p.mean_abs = {1.5f, 0.5f, 0.0f, 0.1f, 0.2f, 0.3f};
  p.threshold = {0.0f, 0.0f};
  return p;
}

TEST(ActivationProfileTest, RoundTripsAndChecksTheModel) {
  const std::string path =
      (std::filesystem::path(testing::TempDir()) / absl::StrCat("profile_", getpid(), ".pi"))
          .string();
  ActivationProfile p = Sample();
  ASSERT_TRUE(p.Write(path).ok());
  absl::StatusOr<ActivationProfile> back = ActivationProfile::Read(path, "0123456789abcdef");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->fire_count, p.fire_count);
  EXPECT_EQ(back->mean_abs, p.mean_abs);
  EXPECT_DOUBLE_EQ(back->Frequency(0, 1), 0.5);
  EXPECT_DOUBLE_EQ(back->LayerDensity(1), 6.0 / 30.0);
  EXPECT_FALSE(back->calibrated());
  absl::StatusOr<ActivationProfile> other = ActivationProfile::Read(path, "ffffffffffffffff");
  EXPECT_EQ(other.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(other.status().message().find("was made for another model"), std::string::npos);
  std::filesystem::remove(path);
}

TEST(ActivationProfileTest, RejectsInconsistentCounts) {
  ActivationProfile p = Sample();
  p.fire_count[0] = 11;  // more firings than tokens
  EXPECT_FALSE(p.Validate().ok());
  p = Sample();
  p.mean_abs.pop_back();
  EXPECT_FALSE(p.Validate().ok());
  for (float bad : {-1.0f, std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity(), std::nanf("")}) {
    p = Sample();
    p.threshold[1] = bad;
    const absl::Status s = p.Validate();
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_NE(s.message().find("is not a finite number >= 0"), std::string::npos) << s;
  }
}

}  // namespace
}  // namespace pinfer
