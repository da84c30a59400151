// The executor and sessions: batching, KV truncation, errors, FFN strategies, the observer hook and
// the byte accounting.
#include <cmath>
#include <memory>
#include <vector>

#include "absl/strings/match.h"
#include "format/quant.h"
#include "gtest/gtest.h"
#include "runtime/exec/ffn_builder.h"
#include "runtime/exec/forward_observer.h"
#include "runtime/exec/layer_ffn.h"
#include "tests/runtime/runtime_harness.h"
#include "tests/runtime/test_models.h"

namespace pinfer {
namespace {

using test::BundledModel;

std::vector<float> EvaluateAll(Session& session, const std::vector<int32_t>& tokens) {
  absl::StatusOr<std::span<const float>> logits = session.Evaluate(tokens, Logits::kAll);
  EXPECT_TRUE(logits.ok()) << logits.status();
  return logits.ok() ? std::vector<float>(logits->begin(), logits->end()) : std::vector<float>();
}

void ExpectClose(std::span<const float> a, std::span<const float> b, float tolerance) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], tolerance) << "at " << i;
}

// With an f32 KV cache: batching changes the f32 rounding of the products (by ~1e-7), which an f16
// cache can turn into a different f16 rounding of a key (2^-11 relative); that is the cache's
// rounding, not the batching's, and kv_cache_test.cc bounds what it costs.
TEST(SessionTest, BatchedPromptEqualsTokenByToken) {
  const std::string path = test::ConvertedModel(BundledModel::kStories260K, DType::kF32);
  test::Loaded whole = test::LoadForTest(path, 0, 256, DType::kF32);
  test::Loaded small = test::LoadForTest(path, 0, 7, DType::kF32);
  test::Loaded single = test::LoadForTest(path, 0, 1, DType::kF32);
  ASSERT_NE(single.session, nullptr);
  const std::vector<int32_t> tokens =
      whole.tokenizer->Encode("Once upon a time there was a big dog who liked to run in the sun.");
  ASSERT_GT(tokens.size(), 15u);
  const std::vector<float> a = EvaluateAll(*whole.session, tokens);
  const std::vector<float> b = EvaluateAll(*small.session, tokens);
  std::vector<float> c;
  for (int32_t token : tokens) {
    absl::StatusOr<std::span<const float>> logits =
        single.session->Evaluate(std::span<const int32_t>(&token, 1), Logits::kLast);
    ASSERT_TRUE(logits.ok()) << logits.status();
    c.insert(c.end(), logits->begin(), logits->end());
  }
  ExpectClose(a, b, 1e-4f);
  ExpectClose(a, c, 1e-4f);
  EXPECT_EQ(whole.session->stats().passes, 1);
  EXPECT_EQ(small.session->stats().passes, static_cast<int64_t>((tokens.size() + 6) / 7));
  EXPECT_EQ(whole.session->position(), static_cast<int64_t>(tokens.size()));
  EXPECT_EQ(whole.session->tokens(), tokens);
}

TEST(SessionTest, TruncateThenContinueEqualsAFreshSession) {
  const std::string path = test::ConvertedModel(BundledModel::kStories260K, DType::kF32);
  test::Loaded l = test::LoadForTest(path);
  test::Loaded fresh = test::LoadForTest(path);
  ASSERT_NE(fresh.session, nullptr);
  const std::vector<int32_t> shared = l.tokenizer->Encode("The cat sat on the mat");
  const std::vector<int32_t> first = l.tokenizer->Encode(" and ate a fish", false);
  const std::vector<int32_t> second = l.tokenizer->Encode(" because it was happy", false);
  EvaluateAll(*l.session, shared);
  EvaluateAll(*l.session, first);
  l.session->Truncate(static_cast<int64_t>(shared.size()));
  EXPECT_EQ(l.session->position(), static_cast<int64_t>(shared.size()));
  const std::vector<float> continued = EvaluateAll(*l.session, second);
  EvaluateAll(*fresh.session, shared);
  ExpectClose(continued, EvaluateAll(*fresh.session, second), 1e-5f);

  l.session->Reset();
  EXPECT_EQ(l.session->position(), 0);
  EXPECT_TRUE(l.session->tokens().empty());
}

TEST(SessionTest, RejectsWhatDoesNotFitOrIsNotAToken) {
  test::Loaded l =
      test::LoadForTest(test::ConvertedModel(BundledModel::kStories260K, DType::kF32), 8);
  ASSERT_NE(l.session, nullptr);
  EXPECT_EQ(l.session->context_length(), 8);
  const std::vector<int32_t> nine(9, 5);
  absl::StatusOr<std::span<const float>> full = l.session->Evaluate(nine);
  EXPECT_EQ(full.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(absl::StrContains(full.status().message(), "context")) << full.status();
  EXPECT_EQ(l.session->position(), 0);  // nothing evaluated

  const std::vector<int32_t> bad = {1, 512};
  absl::StatusOr<std::span<const float>> out_of_vocab = l.session->Evaluate(bad);
  EXPECT_EQ(out_of_vocab.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(out_of_vocab.status().message(), "512")) << out_of_vocab.status();
  EXPECT_FALSE(l.session->Evaluate({}).ok());

  const std::vector<int32_t> eight(8, 5);
  EXPECT_TRUE(l.session->Evaluate(eight).ok());
  const int32_t one = 5;
  EXPECT_FALSE(l.session->Evaluate(std::span<const int32_t>(&one, 1)).ok());
}

TEST(SessionTest, SessionsOverOneExecutorAreIndependent) {
  test::Loaded l = test::LoadForTest(test::ConvertedModel(BundledModel::kStories260K, DType::kF32));
  ASSERT_NE(l.session, nullptr);
  absl::StatusOr<std::unique_ptr<Session>> other = Session::Create(*l.executor);
  ASSERT_TRUE(other.ok());
  const std::vector<int32_t> a = l.tokenizer->Encode("A red ball");
  const std::vector<int32_t> b = l.tokenizer->Encode("The tall tree in the garden");
  const std::vector<float> a_alone = EvaluateAll(*l.session, a);
  l.session->Reset();
  // Interleave: a in one session, b in the other, then a again.
  EvaluateAll(**other, b);
  const std::vector<float> a_interleaved = EvaluateAll(*l.session, a);
  EXPECT_EQ(a_alone, a_interleaved);
}

TEST(SessionTest, OneFfnPerLayerIsInstalledAndCounted) {
  test::Loaded l = test::LoadForTest(test::ConvertedModel(BundledModel::kStories260K, DType::kF32));
  ASSERT_NE(l.session, nullptr);
  const std::vector<int32_t> tokens = l.tokenizer->Encode("Tim and Sue played");
  const std::vector<float> dense = EvaluateAll(*l.session, tokens);
  // The default FFN is the dense one: one CPU part per layer computing every neuron, which saw
  // each token once in one call.
  for (int64_t i = 0; i < l.model->n_layers(); ++i) {
    const LayerFfn& ffn = l.executor->ffn(i);
    ASSERT_EQ(ffn.parts().size(), 1u);
    EXPECT_EQ(ffn.parts()[0].selection, Selection::kAll);
    EXPECT_EQ(ffn.parts()[0].neurons.size(), static_cast<size_t>(l.model->config().n_ff));
    EXPECT_EQ(ffn.Totals().calls, 1);
    EXPECT_EQ(ffn.Totals().tokens, static_cast<int64_t>(tokens.size()));
    EXPECT_EQ(ffn.Totals().weight_bytes, l.model->layer(i).FfnBytes());
  }

  // Built again by the one builder: the same logits, bit for bit.
  absl::StatusOr<std::vector<std::unique_ptr<LayerFfn>>> again = BuildFfnLayers(*l.model, {});
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE(l.executor->SetFfnLayers(*std::move(again)).ok());
  l.session->Reset();
  EXPECT_EQ(EvaluateAll(*l.session, tokens), dense);

  // One FFN per layer, in order.
  absl::StatusOr<std::vector<std::unique_ptr<LayerFfn>>> short_list = BuildFfnLayers(*l.model, {});
  ASSERT_TRUE(short_list.ok());
  short_list->pop_back();
  EXPECT_FALSE(l.executor->SetFfnLayers(*std::move(short_list)).ok());
  absl::StatusOr<std::vector<std::unique_ptr<LayerFfn>>> swapped = BuildFfnLayers(*l.model, {});
  ASSERT_TRUE(swapped.ok());
  std::swap((*swapped)[0], (*swapped)[1]);
  EXPECT_FALSE(l.executor->SetFfnLayers(*std::move(swapped)).ok());
}

// Records what the observer sees, and checks it against a recomputation from the weights.
class RecordingObserver : public ForwardObserver {
 public:
  explicit RecordingObserver(const Model& model) : model_(model) {}
  void OnFfn(const FfnTrace& trace) override {
    ++calls;
    layers.push_back(trace.layer);
    positions.push_back(trace.pos0);
    EXPECT_EQ(trace.dim, model_.config().dim);
    EXPECT_EQ(trace.n_ff, model_.config().n_ff);
    const int64_t n = trace.n(), n_ff = trace.n_ff, dim = trace.dim;
    for (int64_t i = 0; i < n * n_ff; ++i) {
      zeros += trace.activations[i] == 0.0f;
      total += 1;
    }
    for (int64_t i = 0; i < n * dim; ++i) min_input = std::min(min_input, trace.input[i]);
    // a_i = act(gate_i·x)·(up_i·x) for a few neurons of the last token.
    const LayerWeights& w = model_.layer(trace.layer);
    const float* x = trace.input + (n - 1) * dim;
    std::vector<float> gate(static_cast<size_t>(dim)), up(static_cast<size_t>(dim));
    for (int64_t neuron = 0; neuron < n_ff; neuron += 37) {
      ASSERT_TRUE(DecodeRow(w.ffn_gate.Row(neuron), dim, w.ffn_gate.dtype, gate.data()).ok());
      ASSERT_TRUE(DecodeRow(w.ffn_up.Row(neuron), dim, w.ffn_up.dtype, up.data()).ok());
      double g = 0, u = 0;
      for (int64_t d = 0; d < dim; ++d) {
        g += static_cast<double>(gate[d]) * x[d];
        u += static_cast<double>(up[d]) * x[d];
      }
      const float expected =
          model_.config().ffn_act.Combine(static_cast<float>(g), static_cast<float>(u));
      EXPECT_NEAR(trace.activations[(n - 1) * n_ff + neuron], expected, 1e-4f);
      EXPECT_NEAR(trace.gate[(n - 1) * n_ff + neuron], g, 1e-4);
    }
  }
  int calls = 0;
  std::vector<int64_t> layers, positions;
  int64_t zeros = 0, total = 0;
  float min_input = 0.0f;

 private:
  const Model& model_;
};

TEST(SessionTest, ObserverSeesEveryLayerOfEveryBatch) {
  test::Loaded l =
      test::LoadForTest(test::ConvertedModel(BundledModel::kReluLlama260K, DType::kF32), 0, 4);
  ASSERT_NE(l.session, nullptr);
  RecordingObserver observer(*l.model);
  l.session->SetObserver(&observer);
  const std::vector<int32_t> tokens = l.tokenizer->Encode("One day a bird sang");
  ASSERT_GT(tokens.size(), 4u);
  EvaluateAll(*l.session, tokens);
  const int64_t batches = (static_cast<int64_t>(tokens.size()) + 3) / 4;
  EXPECT_EQ(observer.calls, batches * l.model->n_layers());
  EXPECT_EQ(observer.layers[0], 0);
  EXPECT_EQ(observer.layers[1], 1);
  EXPECT_EQ(observer.positions.front(), 0);
  EXPECT_EQ(observer.positions.back(), 4 * (batches - 1));
  // The norm activation (shifted ReLU) feeds the FFN: its inputs are never negative.
  EXPECT_GE(observer.min_input, 0.0f);
}

// reference_outputs.md: over the greedy generation from BOS, 76.9% of the FFN gate activations of
// the ReLU model are exactly zero.
TEST(SessionTest, ReluModelFfnIsMostlyZeroOverItsGreedyGeneration) {
  test::Loaded l =
      test::LoadForTest(test::ConvertedModel(BundledModel::kReluLlama260K, DType::kF32));
  ASSERT_NE(l.session, nullptr);
  RecordingObserver observer(*l.model);
  l.session->SetObserver(&observer);
  test::GreedyContinuation(l, "", 60);
  const double zero_fraction = static_cast<double>(observer.zeros) / observer.total;
  EXPECT_NEAR(zero_fraction, 0.769, 0.0005);  // we measure 0.76875
}

TEST(SessionTest, CountsTheBytesEachPassReads) {
  test::Loaded l =
      test::LoadForTest(test::ConvertedModel(BundledModel::kStories260K, DType::kQ8_0));
  ASSERT_NE(l.session, nullptr);
  const ModelConfig& c = l.model->config();
  const std::vector<int32_t> prompt = {1, 100, 200};
  ASSERT_TRUE(l.session->Evaluate(prompt).ok());
  const ForwardStats before = l.session->stats();
  const int32_t next = 300;
  ASSERT_TRUE(l.session->Evaluate(std::span<const int32_t>(&next, 1)).ok());
  const ForwardStats one = l.session->stats() - before;
  EXPECT_EQ(one.tokens, 1);
  EXPECT_EQ(one.passes, 1);
  // Every tensor once (the tied classifier is the embedding matrix) plus the looked-up row.
  EXPECT_EQ(one.weight_bytes, l.model->WeightBytes() + l.model->token_embedding().row_bytes);
  // Keys and values of the 4 positions, in the default f16 cache: 2 bytes an element.
  ASSERT_EQ(l.session->KvCacheType(), DType::kF16);
  EXPECT_EQ(one.kv_bytes, 2u * c.n_layers * 4 * c.kv_dim() * 2);
  EXPECT_GT(one.seconds, 0.0);
  EXPECT_GT(one.EffectiveGBps(), 0.0);
}

}  // namespace
}  // namespace pinfer

namespace pinfer {
namespace {

TEST(FitPromptTest, KeepsBosAndTheEndOrFails) {
  const std::vector<int32_t> prompt = {1, 10, 11, 12, 13, 14, 15, 16, 17, 18};
  absl::StatusOr<PromptFit> fits = FitPromptToContext(prompt, 10, 5, false, 1);
  ASSERT_TRUE(fits.ok());
  EXPECT_EQ(fits->tokens, prompt);
  EXPECT_EQ(fits->dropped, 0);

  absl::StatusOr<PromptFit> too_long = FitPromptToContext(prompt, 8, 5, false, 1);
  EXPECT_EQ(too_long.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(absl::StrContains(too_long.status().message(), "10 tokens")) << too_long.status();

  // Room for min(max_tokens, context/2) = 3 generated tokens: BOS + the last 4.
  absl::StatusOr<PromptFit> truncated = FitPromptToContext(prompt, 8, 3, true, 1);
  ASSERT_TRUE(truncated.ok());
  EXPECT_EQ(truncated->tokens, (std::vector<int32_t>{1, 15, 16, 17, 18}));
  EXPECT_EQ(truncated->dropped, 5);
  // No limit on generation: half the context.
  truncated = FitPromptToContext(prompt, 8, -1, true, 1);
  ASSERT_TRUE(truncated.ok());
  EXPECT_EQ(truncated->tokens, (std::vector<int32_t>{1, 16, 17, 18}));
  // Without BOS the last tokens only; a context of 1 keeps one token.
  truncated = FitPromptToContext({10, 11, 12}, 2, 1, true, 1);
  ASSERT_TRUE(truncated.ok());
  EXPECT_EQ(truncated->tokens, (std::vector<int32_t>{12}));
  truncated = FitPromptToContext(prompt, 1, 1, true, 1);
  ASSERT_TRUE(truncated.ok());
  EXPECT_EQ(truncated->tokens, (std::vector<int32_t>{1}));
}

}  // namespace
}  // namespace pinfer

namespace pinfer {
namespace {

// ContextThatFits against a given amount of memory: what fits is kept, a requested context that
// does not fit is refused with the numbers and the largest that fits, the model's own context is
// shortened, and a server's slots count together (an f32 KV cache; kv_cache_test.cc has the
// other types).
TEST(ContextThatFitsTest, RefusesOrShortensByTheMemoryAvailable) {
  ModelConfig c;
  c.n_layers = 4;
  c.dim = 64;
  c.n_heads = 4;
  c.n_kv_heads = 4;
  c.head_dim = 16;
  c.n_ff = 128;
  c.vocab_size = 100;
  c.context_length = 1 << 20;
  // Per position: K and V of 4 layers x 64 floats = 2 KiB (an f32 cache), plus the token id.
  const uint64_t per_position = 2 * 4 * 64 * 4 + 4;
  const uint64_t available = 4096 * per_position + (1 << 20);

  EXPECT_EQ(*ContextThatFits(c, 1000, 8, 1, available, DType::kF32), 1000);
  EXPECT_EQ(*ContextThatFits(c, 1000, 8, 1, std::nullopt, DType::kF32), 1000);  // unknown: no check

  absl::StatusOr<int64_t> refused = ContextThatFits(c, 100000, 8, 1, available, DType::kF32);
  ASSERT_TRUE(absl::IsResourceExhausted(refused.status())) << refused.status();
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "a context of 100000 tokens needs "))
      << refused.status();
  const std::string message(refused.status().message());
  const size_t at = message.find("the largest context that fits is -c ");
  ASSERT_NE(at, std::string::npos) << message;
  const int64_t largest = std::stoll(message.substr(at + 36));
  EXPECT_GT(largest, 4096);
  EXPECT_LT(largest, 4096 + 1024);
  EXPECT_EQ(*ContextThatFits(c, largest, 8, 1, available, DType::kF32), largest);
  EXPECT_FALSE(ContextThatFits(c, largest + 1, 8, 1, available, DType::kF32).ok());

  EXPECT_EQ(*ContextThatFits(c, 0, 8, 1, available, DType::kF32),
            largest);  // the model's 1M: shortened

  absl::StatusOr<int64_t> slots = ContextThatFits(c, largest, 8, 4, available, DType::kF32);
  ASSERT_FALSE(slots.ok());
  EXPECT_TRUE(absl::StrContains(slots.status().message(), "4 sequences of ")) << slots.status();
  EXPECT_FALSE(ContextThatFits(c, 100, 8, 1, 1000, DType::kF32).ok());  // not even the scratch fits
}

}  // namespace
}  // namespace pinfer
