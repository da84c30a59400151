// ActivationCounter on hand-made traces: counts, mean |a|, the two firing rules, and which tokens'
// pairs reach the sample file.
#include "tools/profile/activation_counter.h"

#include <cmath>
#include <filesystem>
#include <vector>

#include "gtest/gtest.h"
#include "tests/runtime/test_models.h"

namespace pinfer {
namespace {

ModelConfig SmallConfig() {
  ModelConfig c;
  c.n_layers = 2;
  c.n_ff = 10;
  c.dim = 4;
  return c;
}

// One batch of `n` tokens for `layer`: a[t][i] = values(t, i), gate = a, inputs t + 0.5.
struct Batch {
  std::vector<int32_t> tokens;
  std::vector<float> input, gate, activations;
  FfnTrace Trace(int64_t layer) const {
    FfnTrace t;
    t.layer = layer;
    t.tokens = tokens;
    t.dim = 4;
    t.n_ff = 10;
    t.input = input.data();
    t.gate = gate.data();
    t.activations = activations.data();
    return t;
  }
};

Batch MakeBatch(int n, int first_token, float (*value)(int t, int i)) {
  Batch b;
  for (int t = 0; t < n; ++t) {
    b.tokens.push_back(100 + first_token + t);
    for (int k = 0; k < 4; ++k) b.input.push_back(first_token + t + 0.25f * k);
    for (int i = 0; i < 10; ++i) {
      b.activations.push_back(value(first_token + t, i));
      b.gate.push_back(value(first_token + t, i));
    }
  }
  return b;
}

// Neuron i fires on token t when (t + i) % 3 == 0, with |a| = i + 1.
float Pattern(int t, int i) { return (t + i) % 3 == 0 ? (i % 2 ? -1.0f : 1.0f) * (i + 1) : 0.0f; }

TEST(ActivationCounterTest, CountsExactZerosAndSumsMagnitudes) {
  ActivationCounter counter(SmallConfig(),
                            FiringThresholds{Activation{ActivationKind::kRelu, 0}, {}});
  const Batch first = MakeBatch(4, 0, Pattern), second = MakeBatch(3, 4, Pattern);
  for (const Batch* b : {&first, &second}) {
    counter.OnFfn(b->Trace(0));
    counter.OnFfn(b->Trace(1));
  }
  EXPECT_EQ(counter.tokens(), 7);
  for (int i = 0; i < 10; ++i) {
    int fired = 0;
    for (int t = 0; t < 7; ++t) fired += (t + i) % 3 == 0;
    EXPECT_EQ(counter.fire_count(0, i), fired) << i;
    EXPECT_EQ(counter.fire_count(1, i), fired) << i;
    EXPECT_DOUBLE_EQ(counter.sum_abs(1, i), fired * (i + 1.0));
  }
  absl::StatusOr<ActivationProfile> profile = counter.ToProfile();
  ASSERT_TRUE(profile.ok()) << profile.status();
  EXPECT_EQ(profile->tokens, 7);
  EXPECT_FLOAT_EQ(profile->mean_abs[3], counter.sum_abs(0, 3) / 7);
  EXPECT_EQ(profile->threshold, std::vector<float>(2, 0.0f));
}

TEST(ActivationCounterTest, CalibratedModelsFireAboveTheLayerThreshold) {
  // silu(g) for g = ±(i+1) where the pattern fires: |silu(-k)| is small, |silu(k)| ≈ k.
  FiringThresholds rule{Activation{ActivationKind::kSilu, 0}, {0.5f, 3.5f}};
  ActivationCounter counter(SmallConfig(), rule);
  const Batch b = MakeBatch(6, 0, Pattern);
  counter.OnFfn(b.Trace(0));
  counter.OnFfn(b.Trace(1));
  for (int i = 0; i < 10; ++i) {
    int fired0 = 0, fired1 = 0;
    for (int t = 0; t < 6; ++t) {
      const float g = Pattern(t, i);
      const float s = std::fabs(g / (1 + std::exp(-g)));
      fired0 += s > 0.5f;
      fired1 += s > 3.5f;
    }
    EXPECT_EQ(counter.fire_count(0, i), fired0) << i;
    EXPECT_EQ(counter.fire_count(1, i), fired1) << i;
  }
  EXPECT_EQ(counter.ToProfile()->threshold, rule.per_layer);
}

TEST(ActivationCounterTest, SamplesEveryKthTokenAcrossBatches) {
  const std::string path = test::ScratchDir() + "/counter_samples.zst";
  SampleFileSpec spec;
  spec.model_digest = "0123456789abcdef";
  spec.n_layers = 2;
  spec.dim = 4;
  spec.n_ff = 10;
  spec.input_dtype = DType::kF32;
  auto writer = SampleFileWriter::Create(path, spec);
  ASSERT_TRUE(writer.ok());
  ActivationCounter counter(
      SmallConfig(), FiringThresholds{Activation{ActivationKind::kRelu, 0}, {}}, writer->get(), 3);
  const Batch first = MakeBatch(4, 0, Pattern), second = MakeBatch(5, 4, Pattern);
  for (const Batch* b : {&first, &second}) {
    counter.OnFfn(b->Trace(0));
    counter.OnFfn(b->Trace(1));
  }
  ASSERT_TRUE(counter.status().ok());
  ASSERT_TRUE((*writer)->Commit().ok());
  auto reader = SampleFileReader::Open(path, spec.model_digest);
  ASSERT_TRUE(reader.ok()) << reader.status();
  for (int64_t l = 0; l < 2; ++l) {
    ASSERT_EQ((*reader)->LayerSamples(l), 3);  // tokens 0, 3, 6 of 9
    auto batch = (*reader)->ReadFrame((*reader)->LayerFrames(l)[0]);
    ASSERT_TRUE(batch.ok());
    for (int64_t s = 0; s < 3; ++s) {
      const int t = static_cast<int>(3 * s);
      EXPECT_EQ(batch->tokens[s], 100 + t);
      EXPECT_EQ(batch->Input(s)[1], t + 0.25f);
      for (int i = 0; i < 10; ++i) EXPECT_EQ(batch->Fired(s, i), (t + i) % 3 == 0);
    }
  }
}

}  // namespace
}  // namespace pinfer
