// The plan's dense parts on the device (Executor::SetPlacement) with the CPU standing in for it:
// its memory is its own, so every copy between the host and the device must happen for the logits
// to be right. On both bundled models, arbitrary placements (attention on or off per layer, FFN
// splits of several shapes, the classifier on or off) give the dense logits and the same greedy
// text, for prompt batches, decode, several sequences in one pass and a context shift; the
// residual stream crosses once per change of place and a device layer synchronises once.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/cpu/kernels.h"
#include "runtime/exec/cpu_backend.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/session.h"
#include "tests/hybrid/hybrid_test_util.h"
#include "tests/runtime/test_models.h"

namespace pinfer::hybrid_test {
namespace {

using test::BundledModel;

// FFN splits: none on the device, a random half per layer, every neuron, and a share growing with
// the layer (the first layer's all on the CPU).
std::vector<std::vector<std::vector<int32_t>>> Splits(const Model& model) {
  const int64_t L = model.n_layers(), n_ff = model.config().n_ff;
  std::vector<std::vector<int32_t>> growing(static_cast<size_t>(L));
  for (int64_t l = 0; l < L; ++l) {
    for (int32_t i = 0; i < n_ff * l / L; ++i) growing[static_cast<size_t>(l)].push_back(i);
  }
  return {{}, RandomPartition(model, 0.5, 11), EveryLayer(model, AllNeurons(n_ff)), growing};
}

class DensePlacementTest : public ::testing::TestWithParam<BundledModel> {
 protected:
  // Tiny models: more threads only add their start-up cost on a shared machine.
  void SetUp() override { cpu::SetThreads(1); }
};

TEST_P(DensePlacementTest, EveryPlacementGivesTheDenseLogitsAndText) {
  std::unique_ptr<Model> model = LoadModel(GetParam());
  ASSERT_NE(model, nullptr);
  const PlacedRun dense = RunPlaced(*model, {}, {});
  ASSERT_FALSE(dense.logits.empty());
  ASSERT_EQ(dense.greedy.size(), 8u);
  int index = 0;
  for (const std::vector<std::vector<int32_t>>& split : Splits(*model)) {
    for (const std::string pattern : {"none", "all", "alternating", "first", "last"}) {
      for (const bool classifier : {false, true}) {
        const std::string what = "split " + std::to_string(index) + ", attention " + pattern +
                                 (classifier ? ", classifier on the device" : "");
        const PlacedRun placed =
            RunPlaced(*model, split, {AttentionPattern(*model, pattern), classifier});
        ExpectSameLogits(dense.logits, placed.logits, what);
        EXPECT_EQ(dense.greedy, placed.greedy) << what;
      }
    }
    ++index;
  }
}

// The residual stream moves once per change of place; a device layer whose FFN has host neurons
// downloads its normed input once (its one synchronisation) and uploads the host partial once.
TEST_P(DensePlacementTest, HiddenStatesCrossOncePerChangeOfPlace) {
  std::unique_ptr<Model> model = LoadModel(GetParam());
  ASSERT_NE(model, nullptr);
  const int64_t L = model->n_layers(), n_ff = model->config().n_ff;
  const std::vector<std::vector<int32_t>> whole = EveryLayer(*model, AllNeurons(n_ff));

  // The whole model on the device: x goes up once, the logits come down once, per token.
  const PlacedRun all = RunPlaced(*model, whole, {AttentionPattern(*model, "all"), true});
  EXPECT_EQ(all.transfers.uploads, all.passes);
  EXPECT_EQ(all.transfers.downloads, all.passes);
  EXPECT_EQ(all.transfers.synchronisations, all.passes);

  // Attention on the device, the FFN all on the CPU: per layer one download (the sync) and one
  // upload of the partial, plus x up before layer 0 and down before the host classifier.
  const PlacedRun cpu_ffn = RunPlaced(*model, {}, {AttentionPattern(*model, "all"), false});
  EXPECT_EQ(cpu_ffn.transfers.uploads, cpu_ffn.passes * (L + 1));
  EXPECT_EQ(cpu_ffn.transfers.downloads, cpu_ffn.passes * (L + 1));
  EXPECT_EQ(cpu_ffn.transfers.synchronisations, cpu_ffn.passes * (L + 1));

  // Alternating places: x crosses at every change of place (the classifier on the host) and
  // nothing else, the device layers' FFN being all on the device.
  const std::vector<uint8_t> alternate = AttentionPattern(*model, "alternating");
  int64_t up = 0, down = 0;
  uint8_t where = 0;
  for (size_t l = 0; l <= alternate.size(); ++l) {
    const uint8_t next = l < alternate.size() ? alternate[l] : 0;
    up += !where && next;
    down += where && !next;
    where = next;
  }
  ASSERT_GE(up, 2);
  const PlacedRun alternating = RunPlaced(*model, whole, {alternate, false});
  EXPECT_EQ(alternating.transfers.uploads, alternating.passes * up);
  EXPECT_EQ(alternating.transfers.downloads, alternating.passes * down);

  // Nothing on the device: nothing crosses.
  const PlacedRun none = RunPlaced(*model, whole, {});
  EXPECT_EQ(none.transfers.uploads + none.transfers.downloads + none.transfers.synchronisations,
            0);
}

// The stand-in's memory holds exactly what the placement puts there: the device layers' attention
// and norms, their f16 KV cache for the session's context, the classifier, the FFN's device rows,
// and the workspace.
TEST_P(DensePlacementTest, DeviceMemoryIsWhatThePlacementSays) {
  std::unique_ptr<Model> model = LoadModel(GetParam());
  ASSERT_NE(model, nullptr);
  const ModelConfig& c = model->config();
  const std::vector<uint8_t> last = AttentionPattern(*model, "last");
  const std::vector<std::vector<int32_t>> split = RandomPartition(*model, 0.5, 5);
  const PlacedRun run = RunPlaced(*model, split, {last, true});
  const LayerWeights& w = model->layer(model->n_layers() - 1);
  EXPECT_EQ(run.device_bytes.attention, w.AttentionBytes());
  EXPECT_EQ(run.device_bytes.norms, 3 * c.dim * sizeof(float));  // attn, ffn, output norms
  EXPECT_EQ(run.device_bytes.kv, 2u * 32 * static_cast<uint64_t>(c.kv_dim()) * 2);  // f16, 1 layer
  EXPECT_EQ(run.device_bytes.output,
            static_cast<uint64_t>(model->output().rows) * model->output().row_bytes);
  uint64_t ffn = 0;
  for (int64_t l = 0; l < model->n_layers(); ++l) {
    const LayerWeights& lw = model->layer(l);
    ffn += split[static_cast<size_t>(l)].size() *
           (lw.ffn_gate.row_bytes + lw.ffn_up.row_bytes + lw.ffn_down_t.row_bytes);
  }
  EXPECT_EQ(run.device_bytes.ffn, ffn);
  EXPECT_GT(run.device_bytes.workspace, 0u);
}

// Several sequences in one batched pass (pi-server's continuous batching), each with its own host
// and device KV caches: every sequence gets the logits it gets alone on the dense executor.
TEST_P(DensePlacementTest, SeveralSequencesInOnePass) {
  std::unique_ptr<Model> model = LoadModel(GetParam());
  ASSERT_NE(model, nullptr);
  const int64_t vocab = model->config().vocab_size;
  Executor dense(*model, {.batch_size = 16});
  Executor placed(*model, {.batch_size = 16});
  std::shared_ptr<Backend> device(CpuBackend::StandIn());
  FfnSetup setup = Hybrid(RandomPartition(*model, 0.5, 2));
  setup.gpu_backend = StandInPartFactory(*model, device, nullptr);
  absl::StatusOr<std::vector<std::unique_ptr<LayerFfn>>> layers = BuildFfnLayers(*model, setup);
  ASSERT_TRUE(layers.ok()) << layers.status();
  ASSERT_TRUE(placed.SetFfnLayers(*std::move(layers)).ok());
  ASSERT_TRUE(placed.SetPlacement({device, AttentionPattern(*model, "alternating"), true}).ok());

  const SessionOptions options{.context_length = 32, .cache_type = DType::kF16};
  std::vector<std::vector<int32_t>> prompts = {{1, 7, 9, 30, 2}, {5, 3}, {11, 12, 13, 14}};
  for (auto& prompt : prompts) {
    for (int32_t& t : prompt) t = static_cast<int32_t>(t % vocab);
  }
  std::vector<std::vector<float>> alone;
  for (const auto& prompt : prompts) {
    std::unique_ptr<Session> s = *Session::Create(dense, options);
    absl::StatusOr<std::span<const float>> logits = s->Evaluate(prompt);
    ASSERT_TRUE(logits.ok()) << logits.status();
    const int32_t next = 4;
    std::vector<float> both(logits->begin(), logits->end());
    logits = s->Evaluate(std::span<const int32_t>(&next, 1));
    ASSERT_TRUE(logits.ok());
    both.insert(both.end(), logits->begin(), logits->end());
    alone.push_back(both);
  }
  BatchState batch = *BatchState::Create(model->config(), 16);
  std::vector<std::unique_ptr<Session>> sessions;
  for (size_t i = 0; i < prompts.size(); ++i) sessions.push_back(*Session::Create(placed, options));
  std::vector<std::vector<float>> together(prompts.size());
  for (int step = 0; step < 2; ++step) {
    const int32_t next = 4;
    std::vector<Session::Pass> passes;
    for (size_t i = 0; i < prompts.size(); ++i) {
      passes.push_back({sessions[i].get(),
                        step == 0 ? std::span<const int32_t>(prompts[i])
                                  : std::span<const int32_t>(&next, 1),
                        Logits::kLast});
    }
    absl::StatusOr<std::vector<std::span<const float>>> logits =
        Session::EvaluateTogether(passes, batch);
    ASSERT_TRUE(logits.ok()) << logits.status();
    for (size_t i = 0; i < prompts.size(); ++i) {
      together[i].insert(together[i].end(), (*logits)[i].begin(), (*logits)[i].end());
    }
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    ExpectSameLogits(alone[i], together[i], "sequence " + std::to_string(i));
  }
}

// A context shift moves the host and the device caches alike: after it, the placed run continues
// as the dense one does.
TEST_P(DensePlacementTest, ContextShiftShiftsTheDeviceCacheToo) {
  std::unique_ptr<Model> model = LoadModel(GetParam());
  ASSERT_NE(model, nullptr);
  const int64_t vocab = model->config().vocab_size;
  Executor dense(*model, {.batch_size = 16});
  Executor placed(*model, {.batch_size = 16});
  ASSERT_TRUE(placed
                  .SetPlacement({std::shared_ptr<Backend>(CpuBackend::StandIn()),
                                 AttentionPattern(*model, "first"), false})
                  .ok());
  const SessionOptions options{.context_length = 32, .cache_type = DType::kF16};
  std::vector<int32_t> prompt;
  for (int i = 0; i < 20; ++i) prompt.push_back(static_cast<int32_t>((i * 29 + 3) % vocab));
  std::vector<std::vector<float>> runs;
  for (Executor* executor : {&dense, &placed}) {
    std::unique_ptr<Session> s = *Session::Create(*executor, options);
    ASSERT_TRUE(s->Evaluate(prompt).ok());
    ASSERT_TRUE(s->ShiftContext(4, 8).ok());
    std::vector<float> after;
    for (int i = 0; i < 3; ++i) {
      const int32_t token = static_cast<int32_t>((i * 17 + 5) % vocab);
      absl::StatusOr<std::span<const float>> logits =
          s->Evaluate(std::span<const int32_t>(&token, 1));
      ASSERT_TRUE(logits.ok()) << logits.status();
      after.insert(after.end(), logits->begin(), logits->end());
    }
    runs.push_back(after);
  }
  ExpectSameLogits(runs[0], runs[1], "after the context shift");
  // Without the device cache's shift the continuation differs: the test can tell.
  std::unique_ptr<Session> unshifted = *Session::Create(placed, options);
  ASSERT_TRUE(unshifted->Evaluate(prompt).ok());
  SequenceState& state = const_cast<SequenceState&>(unshifted->state());
  ASSERT_NE(state.device_kv, nullptr);
  ASSERT_TRUE(state.kv.Shift(20, 4, 8).ok());  // the host layers only
  unshifted->Truncate(12);
  std::vector<float> wrong;
  for (int i = 0; i < 3; ++i) {
    const int32_t token = static_cast<int32_t>((i * 17 + 5) % vocab);
    absl::StatusOr<std::span<const float>> logits =
        unshifted->Evaluate(std::span<const int32_t>(&token, 1));
    ASSERT_TRUE(logits.ok()) << logits.status();
    wrong.insert(wrong.end(), logits->begin(), logits->end());
  }
  EXPECT_GT(MaxAbsDiff(runs[0], wrong), 1e-3);
}

// A sequence made for the host-only layout is refused by a placed executor, with the reason.
TEST_P(DensePlacementTest, RefusesASequenceOfAnotherPlacement) {
  std::unique_ptr<Model> model = LoadModel(GetParam());
  ASSERT_NE(model, nullptr);
  Executor placed(*model, {.batch_size = 4});
  ASSERT_TRUE(placed
                  .SetPlacement({std::shared_ptr<Backend>(CpuBackend::StandIn()),
                                 AttentionPattern(*model, "all"), false})
                  .ok());
  SequenceState host_only = *SequenceState::Create(model->config(), 8);
  BatchState batch = *BatchState::Create(model->config(), 4);
  const int32_t token = 1;
  ForwardStats stats;
  const BatchEntry entry{&host_only, 0, std::span<const int32_t>(&token, 1), Logits::kNone,
                         nullptr, nullptr, &stats};
  const absl::Status s = placed.Forward(batch, {&entry, 1});
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message()).find("CreateSequenceState"), std::string::npos) << s;
  // A placement on the device without a device, or of the wrong length, is refused.
  EXPECT_FALSE(placed.SetPlacement({nullptr, AttentionPattern(*model, "all"), false}).ok());
  EXPECT_FALSE(placed.SetPlacement({std::shared_ptr<Backend>(CpuBackend::StandIn()), {1}, false})
                   .ok());
}

INSTANTIATE_TEST_SUITE_P(BundledModels, DensePlacementTest,
                         ::testing::Values(BundledModel::kStories260K,
                                           BundledModel::kReluLlama260K),
                         [](const auto& info) {
                           return info.param == BundledModel::kStories260K ? "stories260K"
                                                                           : "relu_llama_260k";
                         });

}  // namespace
}  // namespace pinfer::hybrid_test
