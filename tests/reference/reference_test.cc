// pinfer's forward pass against the LibTorch reference (torch_reference.h), on tiny random-weight
// HF checkpoints of each family (tests/convert/hf_fixture.h): pi-convert converts the checkpoint,
// torch_reference computes the logits from the HF files directly, and pinfer's Executor runs the
// converted model over the same tokens.
//
// For prompts of 1, 7 and 40 tokens (one decode-shaped pass, one batch, several batches of 16), the
// logits of every prompt position (the batched path) and of 19 decode steps (one token a pass, the
// greedy continuation) must match the reference's, and the 20 greedy tokens must be the
// reference's argmax chain (some checks use fewer or shorter prompts: Plan).
//
// Covered: Llama 2; Llama 3.1 (rope_theta 500000, GQA, rope_scaling llama3) from HF and from a GGUF
// in llama.cpp's layout (rope_freqs); a 128256-token tied vocabulary in bf16; linear scaling
// through a GGUF; Mistral (GQA, bf16) and its sliding window (the context it allows, the refusal
// of a longer one). The tolerance and why: reference_check.h.
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/session.h"
#include "runtime/model/model.h"
#include "tests/convert/hf_fixture.h"
#include "tests/convert/test_util.h"
#include "tests/reference/reference_check.h"

namespace pinfer {
namespace {

using testing::CheckAgainstReference;
using testing::HfSpec;
using testing::HfVariant;
using testing::Plan;
using testing::RunTool;

// Weights large enough that attention is far from uniform (hf_fixture.h: weight_std).
HfSpec Spec(HfVariant variant) {
  HfSpec spec;
  spec.variant = variant;
  spec.weight_std = 0.25f;
  return spec;
}

TEST(ReferenceTest, Llama2MatchesTheReference) {
  HfSpec spec = Spec(HfVariant::kLlama2);
  CheckAgainstReference("llama2", spec);
}

// Llama 3.1's config: rope_theta 500000, GQA, rope_scaling llama3. With the real
// original_max_position_embeddings (8192) only pairs of wavelength above 2048 positions change,
// by angles too small to see in 60 positions; 64 makes most pairs of these 16-wide heads scaled
// (wavelength above 64) or interpolated (16 to 64), so a wrong divisor shows.
TEST(ReferenceTest, Llama3RopeScalingMatchesTheReference) {
  HfSpec spec = Spec(HfVariant::kLlama3);
  spec.n_kv_heads = 2;
  spec.seed = 4;
  spec.config_patch = {{"rope_scaling", {{"original_max_position_embeddings", 64}}}};
  CheckAgainstReference("llama3", spec);
}

// The same model through a GGUF as llama.cpp writes Llama 3.1's: the divisors in rope_freqs.
TEST(ReferenceTest, Llama3GgufRopeFreqsMatchesTheReference) {
  HfSpec spec = Spec(HfVariant::kLlama3);
  spec.n_kv_heads = 2;
  spec.seed = 4;
  spec.config_patch = {{"rope_scaling", {{"original_max_position_embeddings", 64}}}};
  std::string pi;
  CheckAgainstReference("llama3_gguf", spec, Plan{.lengths = {7, 40}}, &pi, /*via_gguf=*/true);
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(pi);
  ASSERT_TRUE(model.ok()) << model.status();
  // Pair 0 (wavelength 2π) keeps its frequency; the last ones (wavelength > 64) are divided by 8.
  const std::vector<float>& factors = (*model)->config().rope_freq_factors;
  ASSERT_EQ(factors.size(), 8u);
  EXPECT_EQ(factors.front(), 1.0f);
  EXPECT_EQ(factors.back(), 8.0f);
}

// Llama 3's vocabulary size (128256 rows, ids beyond 16 bits) at theta 500000, tied, in bf16.
TEST(ReferenceTest, Llama3VocabularyOf128kMatchesTheReference) {
  HfSpec spec = Spec(HfVariant::kLlama3);
  spec.n_kv_heads = 2;
  spec.seed = 7;
  spec.tied = true;
  spec.dtype = "BF16";
  spec.vocab_size = 128256;
  CheckAgainstReference("llama3_128k", spec, Plan{.lengths = {7}, .greedy = 4});
}

// transformers' older spelling ("type") and linear scaling: every frequency divided by factor.
// Through a GGUF written as llama.cpp writes it (rope.scaling.type linear, rope.scaling.factor 4),
// from the source pi-convert reads config.json's rope_scaling into, so both readers are covered.
TEST(ReferenceTest, LinearRopeScalingGgufMatchesTheReference) {
  HfSpec spec = Spec(HfVariant::kLlama2);
  spec.seed = 5;
  spec.config_patch = {{"rope_scaling", {{"type", "linear"}, {"factor", 4.0}}}};
  CheckAgainstReference("linear_gguf", spec, Plan{}, nullptr, /*via_gguf=*/true);
}

// Mistral-7B-v0.1's config (GQA, sliding_window 4096: wider than these prompts), bf16 weights.
TEST(ReferenceTest, MistralMatchesTheReference) {
  HfSpec spec = Spec(HfVariant::kMistral);
  spec.n_kv_heads = 2;
  spec.dtype = "BF16";
  spec.seed = 3;
  CheckAgainstReference("mistral", spec);
}

// A sliding window narrower than the context the model would otherwise get: pi-convert gives the
// model the window as its context, within which windowed and full attention are the same (the
// reference applies the window), and a longer KV cache is refused, naming the window.
TEST(ReferenceTest, MistralSlidingWindowIsTheContext) {
  HfSpec spec = Spec(HfVariant::kMistral);
  spec.n_kv_heads = 2;
  spec.seed = 6;
  spec.config_patch = {{"sliding_window", 16}};
  std::string pi;
  CheckAgainstReference("mistral_window", spec, Plan{.lengths = {1, 9}, .greedy = 8, .context = 16},
                        &pi);
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(pi);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->config().sliding_window, 16);
  EXPECT_EQ((*model)->config().context_length, 16);
  Executor executor(**model);
  EXPECT_TRUE(Session::Create(executor, SessionOptions{.context_length = 16}).ok());
  absl::StatusOr<std::unique_ptr<Session>> longer =
      Session::Create(executor, SessionOptions{.context_length = 17});
  ASSERT_FALSE(longer.ok());
  EXPECT_EQ(longer.status().message(),
            "a context of 17 positions exceeds this model's sliding attention window of 16 "
            "(sliding-window attention is not implemented): use -c 16 or less");
  // pi-run says so in one error line, naming -c.
  const testing::ToolResult run = RunTool("pi-run", {"-m", pi, "-c", "32", "-p", "a", "-n", "1"});
  EXPECT_NE(run.exit_code, 0);
  ASSERT_FALSE(run.err.empty());
  const std::string last = run.err.substr(run.err.rfind('\n', run.err.size() - 2) + 1);
  EXPECT_EQ(last.rfind("pi-run: error: ", 0), 0u) << run.err;
  EXPECT_NE(last.find("sliding attention window of 16"), std::string::npos) << run.err;
  EXPECT_NE(last.find("use -c 16 or less"), std::string::npos) << run.err;
  EXPECT_EQ(run.err.substr(0, run.err.size() - last.size()).find("error"), std::string::npos)
      << run.err;
}

}  // namespace
}  // namespace pinfer
