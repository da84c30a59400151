// JsonFields: typed access that never throws and never converts a value it cannot represent.
#include "tools/convert/json_fields.h"

#include <limits>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace pinfer {
namespace {

TEST(JsonFieldsTest, IntegersWrittenAsWholeFloatsAreIntegers) {
  const nlohmann::json j = nlohmann::json::parse(R"({"a": 4096.0, "b": -2.0, "c": 7})");
  JsonFields f(j, "config.json");
  EXPECT_EQ(*f.Int("a"), 4096);
  EXPECT_EQ(*f.Int("b"), -2);
  EXPECT_EQ(*f.Int("c"), 7);
}

// Values no int64 holds are errors naming the key, not wrapped or converted (which for a double
// beyond int64 is undefined behaviour).
TEST(JsonFieldsTest, RefusesIntegersOutsideInt64) {
  nlohmann::json j = nlohmann::json::parse(
      R"({"big": 18446744073709551615, "huge": 1e300, "edge": 9223372036854775808.0,
          "half": 2.5, "max": 9223372036854775807, "min": -9223372036854775808})");
  // No JSON text parses to these (nlohmann refuses 1e999), but a json value can hold them.
  j["inf"] = std::numeric_limits<double>::infinity();
  j["nan"] = std::numeric_limits<double>::quiet_NaN();
  JsonFields f(j, "config.json");
  for (const char* key : {"big", "huge", "edge", "half", "inf", "nan"}) {
    absl::StatusOr<int64_t> v = f.Int(key);
    ASSERT_FALSE(v.ok()) << key << " = " << *v;
    EXPECT_TRUE(absl::StrContains(v.status().message(), key)) << v.status();
  }
  EXPECT_EQ(*f.Int("max"), INT64_MAX);
  EXPECT_EQ(*f.Int("min"), INT64_MIN);
}

}  // namespace
}  // namespace pinfer
