#include "bench/synth/shapes.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pinfer::synth {
namespace {

using ::testing::HasSubstr;

TEST(ShapesTest, NamedShapesHaveThePublishedDimensions) {
  absl::StatusOr<ShapeSpec> s = ParseShape("llama-7b");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->dim, 4096);
  EXPECT_EQ(s->n_ff, 11008);
  EXPECT_EQ(s->n_layers, 32);
  EXPECT_EQ(s->head_dim(), 128);
  // Llama-2's published parameter counts.
  EXPECT_EQ(s->Parameters(), 6738415616);
  EXPECT_EQ(ParseShape("llama-13b")->Parameters(), 13015864320);
  EXPECT_EQ(ParseShape("llama-70b")->Parameters(), 68976648192);
  s = ParseShape("llama-70b");
  EXPECT_EQ(s->n_kv_heads, 8);
  s = ParseShape("falcon-40b");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->dim, 8192);
  EXPECT_EQ(s->n_heads, 128);
  EXPECT_EQ(s->n_kv_heads, 8);
  EXPECT_EQ(s->vocab_size, 65024);
  EXPECT_EQ(s->ToString(), "falcon-40b");
}

TEST(ShapesTest, CustomShapesTakeDefaultsAndRoundTrip) {
  absl::StatusOr<ShapeSpec> s = ParseShape("custom:d=256,ff=704,layers=4,heads=4");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->n_kv_heads, 4);
  EXPECT_EQ(s->vocab_size, 32000);
  EXPECT_EQ(s->context_length, 4096);
  absl::StatusOr<ShapeSpec> again = ParseShape(s->ToString());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->ToString(), s->ToString());
  s = ParseShape("custom:vocab=300,kv_heads=2,heads=8,layers=1,ff=64,d=128,ctx=512");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->n_kv_heads, 2);
  EXPECT_EQ(s->context_length, 512);
}

TEST(ShapesTest, RejectsBadShapesWithTheReason) {
  const std::pair<const char*, const char*> bad[] = {
      {"llama-8b", "unknown shape"},
      {"custom:d=256,ff=704,layers=4", "heads is missing"},
      {"custom:d=256,ff=704,layers=4,heads=4,experts=8", "unknown key 'experts'"},
      {"custom:d=250,ff=704,layers=4,heads=2", "multiples of 32"},
      {"custom:d=256,ff=700,layers=4,heads=4", "multiples of 32"},
      {"custom:d=256,ff=704,layers=4,heads=6", "even head size"},
      {"custom:d=256,ff=704,layers=4,heads=4,kv_heads=3", "multiple of kv_heads"},
      {"custom:d=256,ff=704,layers=4,heads=4,vocab=100", "vocab must be in [259"},
      {"custom:d=256,ff=704,layers=0,heads=4", "layers must be in [1"},
      {"custom:d=x,ff=704,layers=4,heads=4", "d needs an integer"},
      {"custom:d=256,d=256,ff=704,layers=4,heads=4", "d is given twice"},
  };
  for (const auto& [text, reason] : bad) {
    absl::StatusOr<ShapeSpec> s = ParseShape(text);
    ASSERT_FALSE(s.ok()) << text;
    EXPECT_THAT(s.status().message(), HasSubstr(std::string("--shape '") + text + "'"));
    EXPECT_THAT(s.status().message(), HasSubstr(reason));
  }
}

}  // namespace
}  // namespace pinfer::synth
