#include "runtime/model/model_config.h"

#include <cmath>

#include "gtest/gtest.h"
#include "runtime/model/vocabulary.h"

namespace pinfer {
namespace {

ModelConfig Stories260K() {
  ModelConfig c;
  c.name = "stories260K";
  c.dim = 64;
  c.n_layers = 5;
  c.n_heads = 8;
  c.n_kv_heads = 4;
  c.head_dim = 8;
  c.n_ff = 172;
  c.vocab_size = 512;
  c.context_length = 512;
  c.tied_embeddings = true;
  return c;
}

TEST(ModelConfigTest, RoundTripsThroughMetadata) {
  ModelConfig c = Stories260K();
  c.ffn_act = *Activation::Parse("shifted_relu:0.25");
  c.norm_act = *Activation::Parse("shifted_relu:1", true);
  Metadata m;
  c.ToMetadata(m);
  absl::StatusOr<ModelConfig> back = ModelConfig::FromMetadata(m);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->dim, 64);
  EXPECT_EQ(back->kv_dim(), 32);
  EXPECT_EQ(back->ffn_act, c.ffn_act);
  EXPECT_EQ(back->norm_act, c.norm_act);
  EXPECT_TRUE(back->tied_embeddings);
}

// Llama 3's RoPE divisors and Mistral's window travel as optional keys, absent when unused.
TEST(ModelConfigTest, RopeFactorsAndSlidingWindowRoundTrip) {
  ModelConfig c = Stories260K();
  Metadata plain;
  c.ToMetadata(plain);
  EXPECT_FALSE(plain.Has("llama.rope_freq_factors"));
  EXPECT_FALSE(plain.Has("llama.sliding_window"));
  EXPECT_EQ(ModelConfig::FromMetadata(plain)->Rope().n_factors, 0);

  c.rope_theta = 500000.0;
  c.rope_freq_factors = {1.0f, 2.5f, 8.0f, 8.0f};
  c.sliding_window = 256;
  Metadata m;
  c.ToMetadata(m);
  absl::StatusOr<ModelConfig> back = ModelConfig::FromMetadata(m);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->rope_freq_factors, c.rope_freq_factors);
  EXPECT_EQ(back->sliding_window, 256);
  const RopeFrequencies rope = back->Rope();
  ASSERT_EQ(rope.n_factors, 4);
  // Pair 2 of a head of 8: 500000^(-4/8) / 8.
  EXPECT_DOUBLE_EQ(rope.Frequency(2, 8), std::pow(500000.0, -0.5) / 8.0);
  EXPECT_DOUBLE_EQ(rope.Frequency(0, 8), 1.0);

  c.rope_freq_factors = {1.0f, 2.0f};  // head_dim 8 has 4 pairs
  EXPECT_FALSE(c.Validate().ok());
  c.rope_freq_factors = {1.0f, 0.0f, 1.0f, 1.0f};
  EXPECT_FALSE(c.Validate().ok());
  c.rope_freq_factors.clear();
  c.sliding_window = -1;
  EXPECT_FALSE(c.Validate().ok());
}

TEST(ModelConfigTest, RejectsUnknownArchitectureAndBadShapes) {
  ModelConfig c = Stories260K();
  Metadata m;
  c.ToMetadata(m);
  m.SetString("general.architecture", "mamba");
  EXPECT_EQ(ModelConfig::FromMetadata(m).status().message(),
            "unknown architecture 'mamba' (supported: llama, opt, falcon)");
  c.n_kv_heads = 3;
  EXPECT_FALSE(c.Validate().ok());
  c = Stories260K();
  c.n_layers = 0;
  EXPECT_EQ(c.Validate().message(), "n_layers must be positive, got 0");
  Metadata missing;
  Stories260K().ToMetadata(missing);
  missing.Erase("llama.n_ff");
  EXPECT_EQ(ModelConfig::FromMetadata(missing).status().message(),
            "metadata key 'llama.n_ff' is missing");
}

TEST(VocabularyTest, RoundTripsAndValidates) {
  Vocabulary v;
  v.pieces = {"<unk>", "<s>", "</s>", "<0x0A>", "\xe2\x96\x81the"};
  v.scores = {0, 0, 0, 0, -1.5f};
  v.types = {2, 3, 3, 6, 1};
  Metadata m;
  v.ToMetadata(m);
  absl::StatusOr<Vocabulary> back = Vocabulary::FromMetadata(m);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->pieces, v.pieces);
  EXPECT_EQ(back->types, v.types);
  v.bos_id = 9;
  EXPECT_FALSE(v.Validate().ok());
  EXPECT_EQ(Vocabulary::FromMetadata(Metadata()).status().message(),
            "the model has no tokenizer (metadata 'tokenizer.model' is missing)");
}

}  // namespace
}  // namespace pinfer
