// The OPT forward pass against the independent f64 reference of opt_fixture.h, on a tiny random
// OPTForCausalLM converted by the real pi-convert: logits of prompts of 1, 7 and 40 tokens in one
// batch (the MatMul paths) and token by token (the decode paths), greedy text, an untied head
// under the original "decoder." names, and the one FFN engine on a gate-less FFN (exact
// gate-first and oracle selections equal dense, hybrid splits and device placements on the CPU
// stand-in equal the host run).
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/cpu/kernels.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/ffn_builder.h"
#include "runtime/exec/session.h"
#include "runtime/model/model.h"
#include "tests/convert/test_util.h"
#include "tests/hybrid/hybrid_test_util.h"
#include "tests/model/opt_fixture.h"

namespace pinfer {
namespace {

using testing::OptModel;
using testing::OptSpec;

struct Converted {
  OptModel hf;
  std::string path;
  std::unique_ptr<Model> model;
};

Converted Convert(const std::string& name, const OptSpec& spec = {}) {
  Converted c;
  const std::string dir = testing::ScratchDir(name);
  c.hf = testing::WriteOptModel(dir + "/hf", spec);
  c.path = dir + "/opt.pi";
  const testing::ToolResult r = testing::RunTool("pi-convert", {c.hf.dir, "-o", c.path, "-q"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(c.path);
  EXPECT_TRUE(model.ok()) << model.status();
  if (model.ok()) c.model = *std::move(model);
  return c;
}

// The shared tiny OPT (tied head, "model.decoder." names), converted once.
const Converted& Tiny() {
  static const Converted* tiny = new Converted(Convert("tiny_opt"));
  return *tiny;
}

std::vector<int32_t> Prompt(int64_t n, int64_t vocab, int salt = 0) {
  std::vector<int32_t> tokens;
  for (int64_t i = 0; i < n; ++i)
    tokens.push_back(static_cast<int32_t>((i * 97 + 13 + salt) % vocab));
  return tokens;
}

// max |ref - got| <= 2e-4 · max(1, max |ref|): f32 products against f64.
void ExpectNear(const std::vector<double>& ref, std::span<const float> got,
                const std::string& what) {
  ASSERT_EQ(ref.size(), got.size()) << what;
  double scale = 1.0, worst = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    scale = std::max(scale, std::fabs(ref[i]));
    worst = std::max(worst, std::fabs(ref[i] - got[i]));
  }
  EXPECT_LE(worst, 2e-4 * scale) << what << ": logits differ by " << worst << " (scale " << scale
                                 << ")";
}

// An f32 KV cache: the comparison is with f64, the default f16 cache would round every key.
const SessionOptions kF32Cache{.context_length = 64, .cache_type = DType::kF32};

class OptForwardTest : public ::testing::Test {
 protected:
  void SetUp() override { cpu::SetThreads(1); }
};

TEST_F(OptForwardTest, HeaderSaysOpt) {
  const Converted& t = Tiny();
  ASSERT_NE(t.model, nullptr);
  const ModelConfig& c = t.model->config();
  EXPECT_EQ(c.architecture, "opt");
  EXPECT_EQ(c.norm, NormKind::kLayer);
  EXPECT_EQ(c.positions, PositionKind::kLearned);
  EXPECT_EQ(c.position_offset, 2);
  EXPECT_FALSE(c.ffn_gated);
  EXPECT_TRUE(c.biases);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_EQ(c.n_ff, 256);
  EXPECT_EQ(t.model->position_embedding().rows, 66);
  EXPECT_EQ(t.model->layer(0).ffn_up.rows, 0);
  ASSERT_TRUE(t.model->vocabulary().has_value());
}

TEST_F(OptForwardTest, BatchedPromptsMatchTheReference) {
  const Converted& t = Tiny();
  ASSERT_NE(t.model, nullptr);
  Executor executor(*t.model);
  for (const int64_t n : {1, 7, 40}) {
    absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(executor, kF32Cache);
    ASSERT_TRUE(session.ok()) << session.status();
    const std::vector<int32_t> prompt = Prompt(n, t.model->config().vocab_size);
    absl::StatusOr<std::span<const float>> logits = (*session)->Evaluate(prompt, Logits::kAll);
    ASSERT_TRUE(logits.ok()) << logits.status();
    ExpectNear(testing::OptReferenceLogits(t.hf, prompt), *logits,
               "a batch of " + std::to_string(n));
  }
}

TEST_F(OptForwardTest, DecodeOneTokenAtATimeMatchesTheReference) {
  const Converted& t = Tiny();
  ASSERT_NE(t.model, nullptr);
  Executor executor(*t.model);
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(executor, kF32Cache);
  ASSERT_TRUE(session.ok()) << session.status();
  const int64_t vocab = t.model->config().vocab_size;
  const std::vector<int32_t> prompt = Prompt(40, vocab, 5);
  const std::vector<double> ref = testing::OptReferenceLogits(t.hf, prompt);
  for (size_t i = 0; i < prompt.size(); ++i) {
    absl::StatusOr<std::span<const float>> logits =
        (*session)->Evaluate(std::span<const int32_t>(&prompt[i], 1), Logits::kLast);
    ASSERT_TRUE(logits.ok()) << logits.status();
    ExpectNear(std::vector<double>(ref.begin() + i * vocab, ref.begin() + (i + 1) * vocab), *logits,
               "decoded token " + std::to_string(i));
  }
}

TEST_F(OptForwardTest, GreedyTokensMatchTheReference) {
  const Converted& t = Tiny();
  ASSERT_NE(t.model, nullptr);
  Executor executor(*t.model);
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(executor, kF32Cache);
  ASSERT_TRUE(session.ok()) << session.status();
  const std::vector<int32_t> prompt = Prompt(6, t.model->config().vocab_size, 1);
  absl::StatusOr<std::span<const float>> logits = (*session)->Evaluate(prompt, Logits::kLast);
  ASSERT_TRUE(logits.ok()) << logits.status();
  std::vector<int32_t> greedy;
  for (int i = 0; i < 10; ++i) {
    const int32_t token =
        static_cast<int32_t>(std::max_element(logits->begin(), logits->end()) - logits->begin());
    greedy.push_back(token);
    logits = (*session)->Evaluate(std::span<const int32_t>(&token, 1), Logits::kLast);
    ASSERT_TRUE(logits.ok()) << logits.status();
  }
  EXPECT_EQ(greedy, testing::OptReferenceGreedy(t.hf, prompt, 10));
}

TEST_F(OptForwardTest, UntiedHeadUnderTheOriginalNames) {
  OptSpec spec;
  spec.tied = false;
  spec.prefix = "decoder.";
  spec.n_layers = 1;
  spec.seed = 9;
  const Converted t = Convert("untied_opt", spec);
  ASSERT_NE(t.model, nullptr);
  EXPECT_FALSE(t.model->config().tied_embeddings);
  Executor executor(*t.model);
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(executor, kF32Cache);
  ASSERT_TRUE(session.ok()) << session.status();
  const std::vector<int32_t> prompt = Prompt(7, spec.vocab, 3);
  absl::StatusOr<std::span<const float>> logits = (*session)->Evaluate(prompt, Logits::kAll);
  ASSERT_TRUE(logits.ok()) << logits.status();
  ExpectNear(testing::OptReferenceLogits(t.hf, prompt), *logits, "untied");
}

TEST_F(OptForwardTest, PositionsPastTheLearnedTableAndContextShiftsAreRefused) {
  const Converted& t = Tiny();
  ASSERT_NE(t.model, nullptr);
  Executor executor(*t.model);
  // A session longer than the 64 positions OPT learned.
  absl::StatusOr<std::unique_ptr<Session>> session =
      Session::Create(executor, {.context_length = 80});
  ASSERT_TRUE(session.ok()) << session.status();
  const std::vector<int32_t> prompt = Prompt(70, t.model->config().vocab_size);
  absl::StatusOr<std::span<const float>> logits = (*session)->Evaluate(prompt, Logits::kLast);
  ASSERT_FALSE(logits.ok());
  EXPECT_NE(logits.status().message().find("past the 64 positions the model learned"),
            std::string::npos)
      << logits.status();
  absl::StatusOr<SequenceState> state = executor.CreateSequenceState(16);
  ASSERT_TRUE(state.ok());
  const absl::Status shift = executor.ShiftCache(*state, 16, 2, 4);
  EXPECT_NE(shift.message().find("a context shift needs RoPE"), std::string::npos) << shift;
}

// The FFN engine on a gate-less FFN: fc1 is the gate, so exact gate-first selection and the
// oracle's sets (the neurons whose activation is non-zero) give the dense logits.
TEST_F(OptForwardTest, ExactAndOracleSelectionGiveTheDenseLogits) {
  const Converted& t = Tiny();
  ASSERT_NE(t.model, nullptr);
  const std::vector<float> dense = hybrid_test::RunLogits(*t.model);
  FfnSetup exact;
  exact.exact = true;
  hybrid_test::ExpectSameLogits(dense, hybrid_test::RunLogits(*t.model, exact), "exact");
  std::shared_ptr<hybrid_test::CountingSelector> oracle = hybrid_test::CountingOracle(*t.model);
  FfnSetup sparse;
  sparse.selector = oracle;
  const hybrid_test::RunResult run = hybrid_test::RunFfn(*t.model, sparse);
  hybrid_test::ExpectSameLogits(dense, run.logits, "oracle");
  // The oracle selected a real subset of the 16 tokens' neurons: the gate-less FFN is sparse.
  const int64_t all = 16 * t.model->config().n_ff * t.model->n_layers();
  EXPECT_GT(oracle->selected, all / 10);
  EXPECT_LT(oracle->selected, all * 3 / 4);
}

// Every device placement on the CPU stand-in (its own memory: a missing copy gives wrong logits)
// and FFN splits over it give the host's logits and greedy text: LayerNorm, the biases and fc2's
// bias (added once per token, not once per part) on both sides.
TEST_F(OptForwardTest, StandInPlacementsGiveTheHostLogitsAndText) {
  const Converted& t = Tiny();
  ASSERT_NE(t.model, nullptr);
  const Model& model = *t.model;
  const hybrid_test::PlacedRun host = hybrid_test::RunPlaced(model, {}, {});
  ASSERT_EQ(host.greedy.size(), 8u);
  const std::vector<std::vector<std::vector<int32_t>>> splits = {
      {},
      hybrid_test::RandomPartition(model, 0.5, 4),
      hybrid_test::EveryLayer(model, hybrid_test::AllNeurons(model.config().n_ff))};
  for (size_t s = 0; s < splits.size(); ++s) {
    for (const std::string pattern : {"none", "all", "first"}) {
      for (const bool classifier : {false, true}) {
        const std::string what = "split " + std::to_string(s) + ", attention " + pattern +
                                 (classifier ? ", classifier on the device" : "");
        const hybrid_test::PlacedRun placed = hybrid_test::RunPlaced(
            model, splits[s], {hybrid_test::AttentionPattern(model, pattern), classifier});
        hybrid_test::ExpectSameLogits(host.logits, placed.logits, what);
        EXPECT_EQ(host.greedy, placed.greedy) << what;
      }
    }
  }
}

}  // namespace
}  // namespace pinfer
