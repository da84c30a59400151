// The Falcon forward pass against the independent f64 reference of falcon_fixture.h, on tiny random
// FalconForCausalLM checkpoints converted by the real pi-convert: Falcon-7B's layout (multi-query,
// one LayerNorm shared by the parallel attention and MLP, tied head) and Falcon-40B's
// (new_decoder_architecture: grouped KV in the fused query_key_value, ln_attn and ln_mlp, a
// separate head), prompts of 1, 7 and 40 tokens in one batch and token by token, greedy tokens,
// the CPU stand-in device, and pi-convert's refusals of the variants it does not run.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/cpu/kernels.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/session.h"
#include "runtime/model/model.h"
#include "tests/convert/test_util.h"
#include "tests/hybrid/hybrid_test_util.h"
#include "tests/model/falcon_fixture.h"
#include "tests/model/family_test_util.h"

namespace pinfer {
namespace {

using testing::FalconModel;
using testing::FalconSpec;

struct Converted {
  FalconModel hf;
  std::unique_ptr<Model> model;
};

Converted Convert(const std::string& name, const FalconSpec& spec) {
  Converted c;
  const std::string dir = testing::ScratchDir(name);
  c.hf = testing::WriteFalconModel(dir + "/hf", spec);
  const std::string path = dir + "/falcon.pi";
  const testing::ToolResult r = testing::RunTool("pi-convert", {c.hf.dir, "-o", path, "-q"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(path);
  EXPECT_TRUE(model.ok()) << model.status();
  if (model.ok()) c.model = *std::move(model);
  return c;
}

using family_test::ExpectNear;
using family_test::kF32Cache;
using family_test::Prompt;

class FalconForwardTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { cpu::SetThreads(1); }
  // The 40B layout when the parameter is true.
  static const Converted& Model(bool forty) {
    static const Converted* seven = new Converted(Convert("falcon7b", testing::Falcon7BLayout()));
    static const Converted* forty_b =
        new Converted(Convert("falcon40b", testing::Falcon40BLayout()));
    return forty ? *forty_b : *seven;
  }
};

TEST_P(FalconForwardTest, HeaderSaysFalcon) {
  const Converted& t = Model(GetParam());
  ASSERT_NE(t.model, nullptr);
  const ModelConfig& c = t.model->config();
  EXPECT_EQ(c.architecture, "falcon");
  EXPECT_TRUE(c.parallel_attn);
  EXPECT_EQ(c.n_kv_heads, GetParam() ? 2 : 1);
  EXPECT_EQ(c.ffn_act.kind, ActivationKind::kGeluErf);
  EXPECT_EQ(c.n_ff, 256);
  EXPECT_EQ(c.tied_embeddings, !GetParam());
}

TEST_P(FalconForwardTest, BatchedAndDecodedLogitsMatchTheReference) {
  const Converted& t = Model(GetParam());
  ASSERT_NE(t.model, nullptr);
  Executor executor(*t.model);
  const int64_t vocab = t.model->config().vocab_size;
  for (const int64_t n : {1, 7, 40}) {
    absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(executor, kF32Cache);
    ASSERT_TRUE(session.ok()) << session.status();
    const std::vector<int32_t> prompt = Prompt(n, vocab);
    absl::StatusOr<std::span<const float>> logits = (*session)->Evaluate(prompt, Logits::kAll);
    ASSERT_TRUE(logits.ok()) << logits.status();
    ExpectNear(testing::FalconReferenceLogits(t.hf, prompt), *logits,
               "a batch of " + std::to_string(n));
  }
  const std::vector<int32_t> prompt = Prompt(40, vocab, 3);
  family_test::ExpectDecodedLogitsNear(executor, prompt,
                                       testing::FalconReferenceLogits(t.hf, prompt), vocab);
}

TEST_P(FalconForwardTest, GreedyTokensMatchTheReference) {
  const Converted& t = Model(GetParam());
  ASSERT_NE(t.model, nullptr);
  const std::vector<int32_t> prompt = Prompt(6, t.model->config().vocab_size, 1);
  Executor executor(*t.model);
  EXPECT_EQ(family_test::SessionGreedy(executor, prompt, 10),
            testing::FalconReferenceGreedy(t.hf, prompt, 10));
}

// The parallel layer on the CPU stand-in device: the attention's output waits in the device's
// buffer while the FFN's CPU part adds its partial sum through another.
TEST_P(FalconForwardTest, StandInPlacementsGiveTheHostLogitsAndText) {
  const Converted& t = Model(GetParam());
  ASSERT_NE(t.model, nullptr);
  const pinfer::Model& model = *t.model;
  family_test::ExpectStandInPlacementsGiveTheHost(
      model, {{}, hybrid_test::RandomPartition(model, 0.5, 4)}, {true});
}

INSTANTIATE_TEST_SUITE_P(Layouts, FalconForwardTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? "Falcon40B" : "Falcon7B";
                         });

TEST(FalconConvertTest, UnsupportedVariantsAreRefusedNamingTheField) {
  const std::string dir = testing::ScratchDir("falcon_variants");
  FalconSpec spec;
  spec.n_layers = 1;
  const FalconModel hf = testing::WriteFalconModel(dir + "/hf", spec);
  const struct {
    const char* key;
    nlohmann::json value;
    std::string expected;
  } cases[] = {
      {"alibi", true, "'alibi' true is not supported"},
      {"bias", true, "'bias' true"},
      {"parallel_attn", false, "'parallel_attn' false"},
      {"activation", "silu", "activation 'silu' is not supported for Falcon"},
      {"hidden_size", nullptr, "'hidden_size' is missing"},
  };
  for (const auto& c : cases) {
    nlohmann::json config = hf.config;
    if (c.value.is_null()) {
      config.erase(c.key);
    } else {
      config[c.key] = c.value;
    }
    testing::WriteFileText(hf.dir + "/config.json", config.dump());
    const testing::ToolResult r =
        testing::RunTool("pi-convert", {hf.dir, "-o", dir + "/x.pi", "-q"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find("config.json"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.expected), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace pinfer
