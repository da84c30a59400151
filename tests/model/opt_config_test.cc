// ModelConfig of the OPT architecture: its hparams survive model.pi's metadata, llama files keep
// their keys (none of the new ones is written for them), and combinations no architecture has are
// refused.
#include "gtest/gtest.h"
#include "runtime/model/model_config.h"

namespace pinfer {
namespace {

ModelConfig Opt() {
  ModelConfig c;
  c.architecture = "opt";
  c.dim = 64;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 4;
  c.head_dim = 16;
  c.n_ff = 256;
  c.vocab_size = 1264;
  c.context_length = 64;
  c.ffn_act = {ActivationKind::kRelu, 0.0f};
  c.norm = NormKind::kLayer;
  c.positions = PositionKind::kLearned;
  c.position_offset = 2;
  c.ffn_gated = false;
  c.biases = true;
  return c;
}

TEST(OptConfigTest, RoundTripsThroughMetadata) {
  const ModelConfig c = Opt();
  ASSERT_TRUE(c.Validate().ok()) << c.Validate();
  Metadata m;
  c.ToMetadata(m);
  absl::StatusOr<ModelConfig> back = ModelConfig::FromMetadata(m);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->architecture, "opt");
  EXPECT_EQ(back->norm, NormKind::kLayer);
  EXPECT_EQ(back->positions, PositionKind::kLearned);
  EXPECT_EQ(back->position_offset, 2);
  EXPECT_FALSE(back->ffn_gated);
  EXPECT_TRUE(back->biases);
  EXPECT_EQ(back->position_rows(), 66);
  EXPECT_FALSE(back->llama_shaped());
}

TEST(OptConfigTest, LlamaFilesGetNoNewKeys) {
  ModelConfig c = Opt();
  c.architecture = "llama";
  c.norm = NormKind::kRms;
  c.positions = PositionKind::kRope;
  c.position_offset = 0;
  c.ffn_gated = true;
  c.biases = false;
  Metadata m;
  c.ToMetadata(m);
  EXPECT_FALSE(m.GetString("llama.norm").ok());
  EXPECT_FALSE(m.GetBool("llama.ffn_gated").ok());
  absl::StatusOr<ModelConfig> back = ModelConfig::FromMetadata(m);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->llama_shaped());
}

TEST(OptConfigTest, RefusesCombinationsNoArchitectureHas) {
  ModelConfig gated = Opt();
  gated.ffn_gated = true;
  EXPECT_NE(gated.Validate().message().find("is not a combination"), std::string::npos);
  ModelConfig llama_with_biases = Opt();
  llama_with_biases.architecture = "llama";
  EXPECT_FALSE(llama_with_biases.Validate().ok());
  ModelConfig unknown = Opt();
  unknown.architecture = "gptj";
  EXPECT_NE(unknown.Validate().message().find(
                "unknown architecture 'gptj' (supported: llama, opt, falcon)"),
            std::string::npos);
  Metadata m;
  Opt().ToMetadata(m);
  m.SetString("llama.norm", "batch");
  EXPECT_NE(ModelConfig::FromMetadata(m).status().message().find("llama.norm"), std::string::npos);
}

}  // namespace
}  // namespace pinfer
