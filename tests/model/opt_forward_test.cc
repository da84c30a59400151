// The OPT forward pass against the independent f64 reference of opt_fixture.h, on a tiny random
// OPTForCausalLM converted by the real pi-convert: logits of prompts of 1, 7 and 40 tokens in one
// batch (the MatMul paths) and token by token (the decode paths), greedy text, an untied head
// under the original "decoder." names, and the one FFN engine on a gate-less FFN (exact
// gate-first and oracle selections equal dense, hybrid splits and device placements on the CPU
// stand-in equal the host run).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/cpu/kernels.h"
#include "runtime/exec/cpu_backend.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/ffn_builder.h"
#include "runtime/exec/session.h"
#include "runtime/model/model.h"
#include "tests/convert/test_util.h"
#include "tests/hybrid/hybrid_test_util.h"
#include "tests/model/family_test_util.h"
#include "tests/model/opt_config_check.h"
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

using family_test::ExpectNear;
using family_test::Prompt;
using family_test::kF32Cache;

class OptForwardTest : public ::testing::Test {
 protected:
  void SetUp() override { cpu::SetThreads(1); }
};

TEST_F(OptForwardTest, HeaderSaysOpt) {
  const Converted& t = Tiny();
  ASSERT_NE(t.model, nullptr);
  const ModelConfig& c = t.model->config();
  testing::ExpectOptConfig(c);
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
  const std::vector<int32_t> prompt = Prompt(40, t.model->config().vocab_size, 5);
  Executor executor(*t.model);
  family_test::ExpectDecodedLogitsNear(executor, prompt,
                                       testing::OptReferenceLogits(t.hf, prompt),
                                       t.model->config().vocab_size);
}

TEST_F(OptForwardTest, GreedyTokensMatchTheReference) {
  const Converted& t = Tiny();
  ASSERT_NE(t.model, nullptr);
  const std::vector<int32_t> prompt = Prompt(6, t.model->config().vocab_size, 1);
  Executor executor(*t.model);
  EXPECT_EQ(family_test::SessionGreedy(executor, prompt, 10),
            testing::OptReferenceGreedy(t.hf, prompt, 10));
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
  family_test::ExpectStandInPlacementsGiveTheHost(
      model,
      {{},
       hybrid_test::RandomPartition(model, 0.5, 4),
       hybrid_test::EveryLayer(model, hybrid_test::AllNeurons(model.config().n_ff))},
      {false, true});
}

// A device backend without LayerNorm or biases (as the CUDA one): the default SupportsModel.
// Everything else is the CPU's, so a llama model placed on it runs.
class LlamaOnlyDevice : public Backend {
 public:
  std::string_view name() const override { return "llama-only device"; }
  bool host() const override { return false; }
  absl::Status CopyIn(void* d, const void* s, size_t n) override { return cpu_->CopyIn(d, s, n); }
  absl::Status CopyOut(void* d, const void* s, size_t n) override { return cpu_->CopyOut(d, s, n); }
  absl::Status Synchronize() override { return absl::OkStatus(); }
  absl::Status RmsNorm(const float* x, const float* w, int64_t rows, int64_t dim, float eps,
                       float* out) override {
    return cpu_->RmsNorm(x, w, rows, dim, eps, out);
  }
  absl::Status ShiftedRelu(float* x, int64_t count, float shift) override {
    return cpu_->ShiftedRelu(x, count, shift);
  }
  absl::Status MatMul(const BackendMatrix& w, const float* x, int64_t n, float* y) override {
    return cpu_->MatMul(w, x, n, y);
  }
  absl::Status Rope(float* v, int64_t n, int64_t heads, int64_t head_dim, int64_t pos0,
                    const RopeFrequencies& rope) override {
    return cpu_->Rope(v, n, heads, head_dim, pos0, rope);
  }
  absl::Status Add(const float* x, int64_t count, float* y) override {
    return cpu_->Add(x, count, y);
  }
  absl::StatusOr<std::unique_ptr<KvStore>> CreateKv(const ModelConfig& c, int64_t slots,
                                                    int64_t context, DType type) override {
    return cpu_->CreateKv(c, slots, context, type);
  }
  absl::Status WriteKv(KvStore& kv, int64_t slot, int64_t pos0, int64_t n, const float* k,
                       const float* v) override {
    return cpu_->WriteKv(kv, slot, pos0, n, k, v);
  }
  absl::Status Attend(const KvStore& kv, int64_t slot, const float* q, int64_t pos0, int64_t n,
                      float* out, uint64_t* bytes) override {
    return cpu_->Attend(kv, slot, q, pos0, n, out, bytes);
  }
  absl::Status ShiftKv(KvStore& kv, int64_t n_past, int64_t keep, int64_t discard) override {
    return cpu_->ShiftKv(kv, n_past, keep, discard);
  }
  ~LlamaOnlyDevice() override { ReleaseWeights(); }

 protected:
  absl::StatusOr<void*> AllocateRaw(size_t bytes) override {
    void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (p == nullptr) return absl::ResourceExhaustedError("out of memory");
    return p;
  }
  void FreeRaw(void* data) override { std::free(data); }

 private:
  std::unique_ptr<CpuBackend> cpu_ = CpuBackend::StandIn();
};

TEST_F(OptForwardTest, ADeviceWithoutTheOptOperationsIsRefusedInOneLine) {
  const Converted& t = Tiny();
  ASSERT_NE(t.model, nullptr);
  Executor executor(*t.model);
  const absl::Status refused = executor.SetPlacement(
      {std::make_shared<LlamaOnlyDevice>(), hybrid_test::AttentionPattern(*t.model, "all"), false});
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnimplemented) << refused;
  EXPECT_NE(refused.message().find("the llama-only device backend runs llama-architecture layers "
                                   "only, not 'opt'"),
            std::string::npos)
      << refused;
  EXPECT_EQ(std::string(refused.message()).find('\n'), std::string::npos);
  // The classifier alone is refused too: the final norm is a LayerNorm.
  EXPECT_FALSE(executor.SetPlacement({std::make_shared<LlamaOnlyDevice>(), {}, true}).ok());
  // A llama model runs on it.
  std::unique_ptr<Model> llama = hybrid_test::LoadModel(test::BundledModel::kStories260K);
  ASSERT_NE(llama, nullptr);
  Executor llama_executor(*llama);
  EXPECT_TRUE(llama_executor
                  .SetPlacement({std::make_shared<LlamaOnlyDevice>(),
                                 hybrid_test::AttentionPattern(*llama, "all"), true})
                  .ok());
}

}  // namespace
}  // namespace pinfer
