// pinfer's forward pass against the LibTorch reference (torch_reference.h), on tiny random-weight
// HF checkpoints of each family (tests/convert/hf_fixture.h): pi-convert converts the checkpoint,
// torch_reference computes the logits from the HF files directly, and pinfer's Executor runs the
// converted model over the same tokens.
//
// For prompts of 1, 7 and 40 tokens (one decode-shaped pass, one batch, several batches of 16), the
// logits of every prompt position (the batched path) and of 19 decode steps (one token a pass, the
// greedy continuation) must match the reference's, and the 20 greedy tokens must be the
// reference's argmax chain.
//
// Tolerance: the reference computes in double, pinfer in f32 with an f32 KV cache, so what differs
// is f32 rounding through two layers (sums of 64-96 products, softmax, RMSNorm): observed at most
// 1e-5 for logits up to about 8 in magnitude (2e-6 of the largest). kTolerance (1e-4 of the
// largest |logit| of the position, absolute) is some 50 times that and still thousands of times
// smaller than what a wrong RoPE frequency does (rope_theta 10000 instead of 500000: errors of 0.2
// to 4).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/session.h"
#include "runtime/model/model.h"
#include "tests/convert/hf_fixture.h"
#include "tests/convert/test_util.h"

namespace pinfer {
namespace {

using testing::HfSpec;
using testing::HfVariant;
using testing::RunTool;

constexpr double kTolerance = 1e-4;
constexpr int64_t kGreedyTokens = 20;

int32_t ArgMax(std::span<const float> row) {
  return static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
}

// The reference's logits of each sequence (each from position 0), in one torch_reference run:
// their rows concatenated, [total tokens, vocab].
std::vector<float> ReferenceLogits(const std::string& hf_dir,
                                   const std::vector<std::vector<int32_t>>& sequences,
                                   const std::string& out) {
  std::vector<std::string> args = {"--model-dir", hf_dir, "--out", out};
  for (const std::vector<int32_t>& tokens : sequences) {
    args.push_back("--tokens");
    args.push_back(absl::StrJoin(tokens, ","));
  }
  const testing::ToolResult r = RunTool("torch_reference", args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const std::vector<uint8_t> bytes = testing::ReadFileBytes(out);
  std::vector<float> logits(bytes.size() / sizeof(float));
  std::memcpy(logits.data(), bytes.data(), logits.size() * sizeof(float));
  return logits;
}

// Every row of `got` ([rows, vocab]) against the reference's rows [first, first + rows).
void ExpectRowsNear(std::span<const float> got, const std::vector<float>& reference, int64_t first,
                    int64_t vocab, const std::string& what) {
  const int64_t rows = static_cast<int64_t>(got.size()) / vocab;
  for (int64_t r = 0; r < rows; ++r) {
    const float* want = reference.data() + (first + r) * vocab;
    double scale = 1.0, worst = 0.0;
    for (int64_t t = 0; t < vocab; ++t) scale = std::max(scale, double(std::fabs(want[t])));
    for (int64_t t = 0; t < vocab; ++t) {
      worst = std::max(worst, std::fabs(double(got[r * vocab + t]) - want[t]));
    }
    EXPECT_LE(worst, kTolerance * scale) << what << ", position " << first + r;
  }
}

// Converts `spec`'s checkpoint and checks pinfer against the reference for prompts of 1, 7 and 40
// tokens.
void CheckAgainstReference(const std::string& name, const HfSpec& spec) {
  const std::string dir = testing::ScratchDir("reference_" + name);
  const std::string hf = dir + "/hf", pi = dir + "/model.pi";
  const testing::HfModel source = testing::WriteHfModel(hf, spec);
  const testing::ToolResult convert = RunTool("pi-convert", {hf, "-o", pi, "-q"});
  ASSERT_EQ(convert.exit_code, 0) << convert.err;
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(pi);
  ASSERT_TRUE(model.ok()) << model.status();
  const int64_t vocab = (*model)->config().vocab_size;
  ExecutorOptions options;
  options.batch_size = 16;  // the 40-token prompt runs in three passes
  Executor executor(**model, options);

  // pinfer first, for every prompt: its prompt logits (one batched evaluation), then the greedy
  // continuation one token a pass, keeping the logits of each decode pass.
  struct Run {
    int64_t length = 0;
    std::vector<int32_t> tokens;  // the prompt, then the continuation but its last token
    std::vector<int32_t> chain;   // the greedy tokens
    std::vector<float> prompt_logits, decode_logits;
  };
  std::vector<Run> runs;
  std::mt19937 rng(spec.seed);
  std::uniform_int_distribution<int32_t> token(3, static_cast<int32_t>(vocab) - 1);
  for (int64_t length : {1, 7, 40}) {
    Run& run = runs.emplace_back();
    run.length = length;
    std::vector<int32_t> prompt(static_cast<size_t>(length));
    for (int32_t& t : prompt) t = token(rng);
    absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(
        executor, SessionOptions{.context_length = 64, .cache_type = DType::kF32});
    ASSERT_TRUE(session.ok()) << session.status();
    absl::StatusOr<std::span<const float>> logits = (*session)->Evaluate(prompt, Logits::kAll);
    ASSERT_TRUE(logits.ok()) << logits.status();
    run.prompt_logits.assign(logits->begin(), logits->end());
    run.chain = {ArgMax(std::span(run.prompt_logits).last(vocab))};
    while (static_cast<int64_t>(run.chain.size()) < kGreedyTokens) {
      logits = (*session)->Evaluate(std::span(&run.chain.back(), 1), Logits::kLast);
      ASSERT_TRUE(logits.ok()) << logits.status();
      run.decode_logits.insert(run.decode_logits.end(), logits->begin(), logits->end());
      run.chain.push_back(ArgMax(*logits));
    }
    run.tokens = prompt;
    run.tokens.insert(run.tokens.end(), run.chain.begin(), run.chain.end() - 1);
  }

  std::vector<std::vector<int32_t>> sequences;
  size_t rows = 0;
  for (const Run& run : runs) {
    sequences.push_back(run.tokens);
    rows += run.tokens.size();
  }
  const std::vector<float> all = ReferenceLogits(hf, sequences, dir + "/logits.f32");
  ASSERT_EQ(all.size(), rows * static_cast<size_t>(vocab));
  size_t offset = 0;
  for (const Run& run : runs) {
    SCOPED_TRACE(name + ", a prompt of " + std::to_string(run.length) + " tokens");
    const std::vector<float> reference(all.begin() + offset * vocab,
                                       all.begin() + (offset + run.tokens.size()) * vocab);
    offset += run.tokens.size();
    ExpectRowsNear(run.prompt_logits, reference, 0, vocab, "prompt (batched)");
    ExpectRowsNear(run.decode_logits, reference, run.length, vocab, "decode");
    std::vector<int32_t> reference_chain;
    for (int64_t s = 0; s < kGreedyTokens; ++s) {
      reference_chain.push_back(
          ArgMax(std::span(reference).subspan((run.length - 1 + s) * vocab, vocab)));
    }
    EXPECT_EQ(run.chain, reference_chain);
  }
}

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

TEST(ReferenceTest, Llama2TiedGroupedQueryMatchesTheReference) {
  HfSpec spec = Spec(HfVariant::kLlama2);
  spec.tied = true;
  spec.n_kv_heads = 2;
  spec.seed = 2;
  spec.config_patch = {{"rope_theta", 500000.0}};
  CheckAgainstReference("llama2_tied_gqa", spec);
}

// Mistral-7B-v0.1's config (GQA, sliding_window 4096: wider than these prompts), bf16 weights.
TEST(ReferenceTest, MistralMatchesTheReference) {
  HfSpec spec = Spec(HfVariant::kMistral);
  spec.n_kv_heads = 2;
  spec.dtype = "BF16";
  spec.seed = 3;
  CheckAgainstReference("mistral", spec);
}

}  // namespace
}  // namespace pinfer
