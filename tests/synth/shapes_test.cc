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

TEST(ShapesTest, OptAndFalconShapesHaveTheirArchitecture) {
  absl::StatusOr<ShapeSpec> s = ParseShape("opt-6.7b");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->architecture, "opt");
  EXPECT_EQ(s->dim, 4096);
  EXPECT_EQ(s->n_ff, 16384);
  EXPECT_EQ(s->vocab_size, 50272);
  EXPECT_EQ(s->context_length, 2048);
  EXPECT_TRUE(s->tied_embeddings);
  // From the modules of facebook/opt-6.7b: tied embeddings 50272 x 4096, positions 2050 x 4096,
  // per layer q/k/v/out 4096² with biases, fc1/fc2 4096 x 16384 with biases, two LayerNorms,
  // and the final LayerNorm: 6.66 B.
  EXPECT_EQ(s->Parameters(), 6658473984);
  EXPECT_EQ(ParseShape("opt-66b")->Parameters(), 65719701504);
  EXPECT_EQ(ParseShape("opt-175b")->Parameters(), 174604468224);
  EXPECT_EQ(ParseShape("opt-66b")->head_dim(), 128);
  s = ParseShape("falcon-40b");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->architecture, "falcon");
  EXPECT_EQ(s->n_ff, 32768);
  EXPECT_EQ(s->n_kv_heads, 8);
  // qkv 8192 x (8192 + 2·8·64), dense 8192², 4h_to_h and h_to_4h, two LayerNorms, no biases.
  EXPECT_EQ(s->Parameters(), 41303293952);
  s = ParseShape("falcon-7b");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->n_heads, 71);
  EXPECT_EQ(s->n_kv_heads, 1);
  EXPECT_EQ(s->head_dim(), 64);
  EXPECT_EQ(s->Parameters(), 6922011520);  // (its one LayerNorm counted twice, as pinfer stores it)
  const ModelConfig falcon = ShapeModelConfig(*s);
  EXPECT_TRUE(falcon.Validate().ok()) << falcon.Validate();
  EXPECT_TRUE(falcon.parallel_attn);
  // --arch: custom shapes default to llama; a named shape can take another architecture.
  EXPECT_EQ(ParseShape("custom:d=256,ff=704,layers=4,heads=4")->architecture, "llama");
  s = ParseShape("custom:d=256,ff=704,layers=4,heads=4", "opt");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->architecture, "opt");
  EXPECT_TRUE(s->tied_embeddings);
  EXPECT_TRUE(ShapeModelConfig(*s).Validate().ok());
  s = ParseShape("falcon-40b", "llama");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->tied_embeddings);
  EXPECT_TRUE(ShapeModelConfig(*s).llama_shaped());
  EXPECT_FALSE(ParseShape("llama-7b", "bloom").ok());
  // Every named shape is a model the runtime accepts.
  for (const char* name : {"llama-7b", "llama-13b", "llama-70b", "opt-6.7b", "opt-66b", "opt-175b",
                           "falcon-7b", "falcon-40b"}) {
    absl::StatusOr<ShapeSpec> named = ParseShape(name);
    ASSERT_TRUE(named.ok()) << name << ": " << named.status();
    EXPECT_TRUE(ShapeModelConfig(*named).Validate().ok()) << name;
    EXPECT_THAT(NamedShapesHelp(), HasSubstr(name));
  }
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
