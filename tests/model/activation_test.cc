#include "runtime/model/activation.h"

#include <cmath>

#include "gtest/gtest.h"

namespace pinfer {
namespace {

TEST(ActivationTest, ParsesTheGrammarAndPrintsItBack) {
  for (const char* text : {"silu", "gelu", "relu", "relu2", "drelu", "fatrelu:0.1", "shifted_relu:0.25", "gelu_erf"}) {
    absl::StatusOr<Activation> act = Activation::Parse(text);
    ASSERT_TRUE(act.ok()) << text << ": " << act.status();
    EXPECT_EQ(*Activation::Parse(act->ToString()), *act) << text;
  }
  EXPECT_EQ(Activation::Parse("shifted_relu:1.0", true)->param, 1.0f);
  EXPECT_EQ(Activation::Parse("none", true)->kind, ActivationKind::kNone);
}

TEST(ActivationTest, RejectsBadText) {
  EXPECT_EQ(Activation::Parse("swish").status().message(),
            "unknown activation 'swish' (expected silu, gelu, gelu_erf, relu, relu2, drelu, "
            "fatrelu:T or shifted_relu:S)");
  EXPECT_EQ(Activation::Parse("fatrelu").status().message(),
            "activation 'fatrelu' needs a parameter, as in fatrelu:0.25");
  EXPECT_FALSE(Activation::Parse("fatrelu:abc").ok());
  EXPECT_FALSE(Activation::Parse("relu:1").ok());
  EXPECT_FALSE(Activation::Parse("none").ok());             // not an FFN activation
  EXPECT_FALSE(Activation::Parse("silu", /*for_norm=*/true).ok());
}

TEST(ActivationTest, Semantics) {
  const Activation silu = *Activation::Parse("silu");
  EXPECT_NEAR(silu.Combine(1.0f, 2.0f), 2.0f / (1.0f + std::exp(-1.0f)), 1e-6);
  const Activation gelu = *Activation::Parse("gelu");
  EXPECT_NEAR(gelu.Gate(1.0f), 0.841192f, 1e-5);  // tanh approximation
  const Activation shifted = *Activation::Parse("shifted_relu:0.25");
  EXPECT_EQ(shifted.Combine(0.2f, 3.0f), 0.0f);
  EXPECT_FLOAT_EQ(shifted.Combine(1.25f, 3.0f), 3.0f);
  const Activation fat = *Activation::Parse("fatrelu:0.5");
  EXPECT_EQ(fat.Gate(0.4f), 0.0f);
  EXPECT_EQ(fat.Gate(0.6f), 0.6f);
  const Activation drelu = *Activation::Parse("drelu");
  EXPECT_EQ(drelu.Combine(2.0f, -1.0f), 0.0f);
  EXPECT_EQ(drelu.Combine(2.0f, 1.5f), 3.0f);
  EXPECT_EQ(Activation::Parse("relu2")->Combine(3.0f, 2.0f), 18.0f);
  EXPECT_TRUE(shifted.HasExactZeros());
  EXPECT_FALSE(silu.HasExactZeros());
  const Activation norm = *Activation::Parse("shifted_relu:1.0", true);
  EXPECT_EQ(norm.ApplyToNorm(0.5f), 0.0f);
  EXPECT_EQ(norm.ApplyToNorm(3.0f), 2.0f);
}

}  // namespace
}  // namespace pinfer
