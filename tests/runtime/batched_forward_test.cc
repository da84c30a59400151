// The batched forward pass over several sequences (Executor::Forward with several BatchEntry,
// Session::EvaluateTogether): each sequence's logits equal those of its own pass, and greedy
// generations that join and leave a shared batch at different steps give the tokens each gives
// alone, with the dense FFN and with sparse FFNs whose batch policy (the union of the batch's
// neurons, or each token's own) the FFN engine applies to the whole batch.
#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/ffn_builder.h"
#include "runtime/exec/ffn_cost_model.h"
#include "runtime/exec/generator.h"
#include "runtime/exec/neuron_selector.h"
#include "runtime/exec/session.h"
#include "tests/runtime/runtime_harness.h"
#include "tests/runtime/test_models.h"

namespace pinfer {
namespace {

using test::BundledModel;

constexpr int64_t kContext = 128;

SamplerParams Greedy() {
  SamplerParams params;
  params.temperature = 0.0f;
  return params;
}

// A generation of the test: its prompt, its length, and the step at which it joins the batch.
struct Job {
  std::vector<int32_t> prompt;
  int64_t max_tokens = 0;
  int64_t join_step = 0;
};

// Four prompts of different lengths (1, 5, about 17 and about 30 tokens), joining at different
// steps and generating different numbers of tokens, so that they leave at different steps too.
std::vector<Job> Jobs(const Tokenizer& tokenizer) {
  std::vector<Job> jobs(4);
  jobs[0].prompt = {tokenizer.bos()};
  jobs[0].max_tokens = 14;
  jobs[1].prompt = tokenizer.Encode("Once upon a time");
  jobs[1].max_tokens = 20;
  jobs[1].join_step = 0;
  jobs[2].prompt = tokenizer.Encode("Tom had a red ball. He liked to throw it high in the sky.");
  jobs[2].max_tokens = 6;
  jobs[2].join_step = 3;
  jobs[3].prompt = tokenizer.Encode(
      "Lily went to the park with her mom. They saw a big dog. The dog was happy and wanted to "
      "play with Lily.");
  jobs[3].max_tokens = 16;
  jobs[3].join_step = 9;
  return jobs;
}

// The job's greedy tokens on a session of its own.
std::vector<int32_t> Alone(test::Loaded& l, const Job& job) {
  std::unique_ptr<Session> session = *Session::Create(*l.executor, SessionOptions{kContext});
  Sampler sampler(Greedy());
  GenerationOptions options;
  options.max_tokens = job.max_tokens;
  absl::StatusOr<GenerationResult> result =
      Generate(*session, sampler, *l.tokenizer, job.prompt, options, nullptr);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? result->tokens : std::vector<int32_t>();
}

struct Together {
  std::vector<std::vector<int32_t>> tokens;  // per job
  size_t widest = 0;                         // most sequences in one pass
  int64_t passes = 0;
};

// The jobs run together, a continuous batch: every step is one pass (EvaluateTogether) over the
// running jobs, a token of each decoding one and at most `chunk` prompt tokens of the others; a
// job joins at its step and leaves when it is over.
Together RunTogether(test::Loaded& l, const std::vector<Job>& jobs, int64_t chunk) {
  const size_t n = jobs.size();
  auto batch = std::make_shared<BatchState>(
      *BatchState::Create(l.executor->config(), chunk * static_cast<int64_t>(n)));
  std::vector<std::unique_ptr<Session>> sessions;
  std::vector<std::optional<Sampler>> samplers(n);
  std::vector<std::optional<Generator>> generators(n);
  SessionOptions options{kContext, static_cast<int64_t>(n), batch};
  for (size_t i = 0; i < n; ++i) sessions.push_back(*Session::Create(*l.executor, options));
  Together out;
  out.tokens.resize(n);
  std::vector<bool> over(n, false);
  for (int64_t step = 0; std::count(over.begin(), over.end(), true) < static_cast<long>(n);
       ++step) {
    for (size_t i = 0; i < n; ++i) {
      if (jobs[i].join_step != step) continue;
      GenerationOptions g;
      g.max_tokens = jobs[i].max_tokens;
      samplers[i].emplace(Greedy());
      generators[i].emplace(*sessions[i], *samplers[i], *l.tokenizer, g);
      EXPECT_TRUE(generators[i]->Start(jobs[i].prompt).ok());
    }
    std::vector<size_t> in;
    std::vector<Generator::Pass> passes;
    std::vector<Session::Pass> evaluated;
    for (size_t i = 0; i < n; ++i) {
      if (!generators[i] || !generators[i]->running()) continue;
      in.push_back(i);
      passes.push_back(generators[i]->NextPass(chunk));
      evaluated.push_back({sessions[i].get(), passes.back().tokens, passes.back().logits});
    }
    if (in.empty()) continue;
    absl::StatusOr<std::vector<std::span<const float>>> logits =
        Session::EvaluateTogether(evaluated, *batch);
    EXPECT_TRUE(logits.ok()) << logits.status();
    if (!logits.ok()) return out;
    out.widest = std::max(out.widest, in.size());
    ++out.passes;
    for (size_t k = 0; k < in.size(); ++k) {
      const size_t i = in[k];
      const GenerationStep s = generators[i]->Consume(passes[k], (*logits)[k], ForwardStats{});
      if (s.token >= 0) out.tokens[i].push_back(s.token);
      if (!generators[i]->running()) over[i] = true;
    }
  }
  return out;
}

void ExpectTogetherEqualsAlone(test::Loaded& l) {
  const std::vector<Job> jobs = Jobs(*l.tokenizer);
  std::vector<std::vector<int32_t>> alone;
  for (const Job& job : jobs) alone.push_back(Alone(l, job));
  const Together together = RunTogether(l, jobs, /*chunk=*/4);
  EXPECT_EQ(together.widest, jobs.size());  // some passes held every sequence
  for (size_t i = 0; i < jobs.size(); ++i) {
    ASSERT_EQ(alone[i].size(), static_cast<size_t>(jobs[i].max_tokens)) << i;
    EXPECT_EQ(together.tokens[i], alone[i]) << "job " << i;
  }
}

TEST(BatchedForwardTest, BatchedGreedyEqualsEachSequenceAlone) {
  test::Loaded l = test::LoadForTest(test::ConvertedModel(BundledModel::kStories260K), kContext);
  ASSERT_NE(l.session, nullptr);
  ExpectTogetherEqualsAlone(l);
}

FiringThresholds FiringOf(const Model& model) {
  FiringThresholds firing;
  firing.activation = model.config().ffn_act;
  return firing;
}

void InstallFfn(test::Loaded& l, FfnSetup setup) {
  absl::StatusOr<std::vector<std::unique_ptr<LayerFfn>>> layers = BuildFfnLayers(*l.model, setup);
  ASSERT_TRUE(layers.ok()) << layers.status();
  ASSERT_TRUE(l.executor->SetFfnLayers(*std::move(layers)).ok());
}

TEST(BatchedForwardTest, SparseBatchesEqualEachSequenceAlone) {
  // The ReLU model's exact zeros: gate-first selection over the whole batch (the neurons that fire
  // for some token of any sequence), and the oracle's sets computed as the batch's union or per
  // token, all give each sequence its dense tokens.
  test::Loaded l = test::LoadForTest(test::ConvertedModel(BundledModel::kReluLlama260K), kContext);
  ASSERT_NE(l.session, nullptr);
  const FiringThresholds firing = FiringOf(*l.model);
  FfnSetup exact;
  exact.exact = true;
  exact.firing = std::make_shared<const FiringThresholds>(firing);
  InstallFfn(l, exact);
  {
    SCOPED_TRACE("exact");
    ExpectTogetherEqualsAlone(l);
  }
  for (const RowChoice choice : {RowChoice::kUnion, RowChoice::kPerToken}) {
    SCOPED_TRACE(choice == RowChoice::kUnion ? "oracle, union" : "oracle, per token");
    FfnSetup oracle;
    oracle.selector = std::make_shared<OracleSelector>(*l.model, firing);
    oracle.firing = std::make_shared<const FiringThresholds>(firing);
    oracle.cost = std::make_shared<const FfnCostModel>(FfnCostModel::Fixed(1.01, choice));
    InstallFfn(l, oracle);
    ExpectTogetherEqualsAlone(l);
    // The batches did take the sparse path: neurons were selected, never all of them.
    const FfnStats stats = l.executor->ffn(0).Totals();
    EXPECT_GT(stats.selected, 0);
    EXPECT_EQ(stats.dense_calls, 0);
  }
}

TEST(BatchedForwardTest, LogitsAndCacheRowsOfABatchedPassEqualSinglePasses) {
  // Three sequences at different positions, each with a pass of a different size and logits
  // (kLast, kAll, kNone), once all in one batched Executor::Forward and once each alone.
  test::Loaded l = test::LoadForTest(test::ConvertedModel(BundledModel::kStories260K), kContext);
  ASSERT_NE(l.session, nullptr);
  const ModelConfig& c = l.executor->config();
  const std::vector<int32_t> text =
      l.tokenizer->Encode("Once upon a time, there was a little girl named Lily. She loved to");
  ASSERT_GT(text.size(), 14u);
  const std::vector<int64_t> prefix = {3, 8, 1};
  const std::vector<int64_t> rows = {1, 6, 4};
  const std::vector<Logits> wanted = {Logits::kLast, Logits::kAll, Logits::kNone};
  BatchState batch = *BatchState::Create(c, 16);
  const auto prefilled = [&] {
    std::vector<SequenceState> states;
    for (const int64_t p : prefix) {
      // An f32 cache: the rows are compared to the bound of f32 summation order, which an f16
      // cache's rounding would exceed.
      states.push_back(*SequenceState::Create(c, kContext, DType::kF32));
      ForwardStats stats;
      BatchEntry e{&states.back(), 0, std::span(text).first(static_cast<size_t>(p))};
      e.stats = &stats;
      EXPECT_TRUE(l.executor->Forward(batch, {&e, 1}).ok());
    }
    return states;
  };
  const size_t vocab = static_cast<size_t>(c.vocab_size);
  auto entry = [&](std::vector<SequenceState>& states, size_t i, std::vector<float>& logits,
                   ForwardStats& stats) {
    logits.assign((wanted[i] == Logits::kAll ? rows[i] : 1) * vocab, 0.0f);
    BatchEntry e;
    e.sequence = &states[i];
    e.pos0 = prefix[i];
    e.tokens =
        std::span(text).subspan(static_cast<size_t>(prefix[i]), static_cast<size_t>(rows[i]));
    e.logits = wanted[i];
    e.logits_out = wanted[i] == Logits::kNone ? nullptr : logits.data();
    e.stats = &stats;
    return e;
  };

  std::vector<SequenceState> alone_states = prefilled();
  std::vector<std::vector<float>> alone(3);
  ForwardStats alone_stats;
  for (size_t i = 0; i < 3; ++i) {
    const BatchEntry e = entry(alone_states, i, alone[i], alone_stats);
    ASSERT_TRUE(l.executor->Forward(batch, {&e, 1}).ok());
  }
  std::vector<SequenceState> together_states = prefilled();
  std::vector<std::vector<float>> together(3);
  std::vector<ForwardStats> together_stats(3);
  std::vector<BatchEntry> entries;
  for (size_t i = 0; i < 3; ++i) {
    entries.push_back(entry(together_states, i, together[i], together_stats[i]));
  }
  ASSERT_TRUE(l.executor->Forward(batch, entries).ok());

  for (size_t i = 0; i < 3; ++i) {
    ASSERT_EQ(together[i].size(), alone[i].size());
    for (size_t j = 0; j < alone[i].size(); ++j) {
      ASSERT_NEAR(together[i][j], alone[i][j], 1e-4f * (1.0f + std::fabs(alone[i][j])))
          << "sequence " << i << " logit " << j;
    }
    // The KV rows each sequence wrote, in its own cache at its own positions, every layer.
    const int64_t kv_dim = c.kv_dim();
    const int64_t positions = prefix[i] + rows[i];
    std::vector<float> together_rows(static_cast<size_t>(positions * kv_dim));
    std::vector<float> alone_rows(together_rows.size());
    for (int64_t layer = 0; layer < c.n_layers; ++layer) {
      for (const bool keys : {true, false}) {
        const KvCache& t_kv = together_states[i].kv;
        const KvCache& a_kv = alone_states[i].kv;
        if (keys) {
          t_kv.DecodeKeys(layer, 0, positions, together_rows.data());
          a_kv.DecodeKeys(layer, 0, positions, alone_rows.data());
        } else {
          t_kv.DecodeValues(layer, 0, positions, together_rows.data());
          a_kv.DecodeValues(layer, 0, positions, alone_rows.data());
        }
        for (size_t k = 0; k < alone_rows.size(); ++k) {
          ASSERT_NEAR(together_rows[k], alone_rows[k], 1e-4f)
              << "sequence " << i << " layer " << layer << (keys ? " keys" : " values");
        }
      }
    }
    EXPECT_EQ(together_stats[i].tokens, rows[i]);
  }
  // Logits that are not nonsense: the kLast logits of the first sequence are not all equal.
  EXPECT_NE(*std::max_element(alone[0].begin(), alone[0].end()),
            *std::min_element(alone[0].begin(), alone[0].end()));
  // The weights were read once for the three sequences, not once each.
  uint64_t shared = 0;
  for (const ForwardStats& s : together_stats) shared += s.weight_bytes;
  EXPECT_LT(shared, alone_stats.weight_bytes / 2);
}

}  // namespace
}  // namespace pinfer
