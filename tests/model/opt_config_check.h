// What every OPT model's config says, however it was made (pi-convert of an HF directory, pi-synth
// --arch opt): LayerNorm, learned positions offset by 2, no gate, biases, a tied head.
#pragma once

#include "gtest/gtest.h"
#include "runtime/model/model_config.h"

namespace pinfer::testing {

inline void ExpectOptConfig(const ModelConfig& c) {
  EXPECT_EQ(c.architecture, "opt");
  EXPECT_EQ(c.norm, NormKind::kLayer);
  EXPECT_EQ(c.positions, PositionKind::kLearned);
  EXPECT_EQ(c.position_offset, 2);
  EXPECT_FALSE(c.ffn_gated);
  EXPECT_TRUE(c.biases);
  EXPECT_TRUE(c.tied_embeddings);
}

}  // namespace pinfer::testing
