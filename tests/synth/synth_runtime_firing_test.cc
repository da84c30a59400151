// pinfer's own runtime (Model, Executor, Session: what pi-profile runs) sees the planted locality:
// over random token sequences, with its observer hook, the firing frequencies match the planted
// probabilities, and it generates finite logits; for each architecture pi-synth writes (llama's
// RMSNorm bias channel, OPT's fc1 biases with LayerNorm and learned positions, Falcon's LayerNorm
// bias channel with parallel attention and grouped KV).
#include <cmath>
#include <optional>
#include <random>

#include "bench/synth/synth_design.h"
#include "bench/synth/synth_model.h"
#include "gtest/gtest.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/forward_observer.h"
#include "runtime/exec/session.h"
#include "runtime/model/model.h"
#include "tests/synth/firing_check.h"
#include "tests/synth/synth_test_util.h"

namespace pinfer::synth::testing {
namespace {

// Counts, per layer and neuron, the tokens whose gate passed the fatrelu threshold.
class FiringCounter : public ForwardObserver {
 public:
  FiringCounter(int64_t n_layers, int64_t n_ff, float threshold)
      : threshold_(threshold),
        fired(static_cast<size_t>(n_layers), std::vector<int64_t>(static_cast<size_t>(n_ff))) {}
  void OnFfn(const FfnTrace& trace) override {
    for (int64_t t = 0; t < trace.n(); ++t) {
      const float* gate = trace.gate + t * trace.n_ff;
      for (int64_t i = 0; i < trace.n_ff; ++i) fired[trace.layer][i] += gate[i] > threshold_;
    }
  }
  const float threshold_;
  std::vector<std::vector<int64_t>> fired;
};

struct Case {
  const char* name;
  const char* shape;
  const char* arch;
  DType dtype;
  std::optional<SynthActivation> act;  // unset: the architecture's
};

class SynthRuntimeTest : public ::testing::TestWithParam<Case> {};

TEST_P(SynthRuntimeTest, TheRuntimeMeasuresThePlantedFrequencies) {
  ScratchDir scratch(std::string("runtime_") + GetParam().name);
  SynthOptions options = SmallModelOptions(GetParam().shape, GetParam().dtype,
                                           scratch.Path("model.pi"), "", GetParam().arch);
  options.ffn_act = GetParam().act;
  absl::StatusOr<SynthReport> report = WriteSyntheticModel(options);
  ASSERT_TRUE(report.ok()) << report.status();
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(options.output_path);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_TRUE((*model)->config().synthetic);
  Executor executor(**model);
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(executor);
  ASSERT_TRUE(session.ok()) << session.status();
  // The gate's firing threshold: fatrelu's T, relu's 0, and for gelu_erf the T at which the
  // planted law holds (|gelu(g)| > gelu(T) exactly where g > T).
  const SynthActivation act =
      options.ffn_act.value_or(ArchitectureActivation(options.shape.architecture));
  FiringCounter counter(options.shape.n_layers, options.shape.n_ff,
                        static_cast<float>(FiringThreshold(act)));
  (*session)->SetObserver(&counter);

  constexpr int kSequences = 4, kLength = 96;
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int32_t> token(0,
                                               static_cast<int32_t>(options.shape.vocab_size) - 1);
  for (int s = 0; s < kSequences; ++s) {
    (*session)->Reset();
    std::vector<int32_t> tokens(kLength);
    for (int32_t& t : tokens) t = token(rng);
    absl::StatusOr<std::span<const float>> logits = (*session)->Evaluate(tokens, Logits::kLast);
    ASSERT_TRUE(logits.ok()) << logits.status();
    for (float v : *logits) ASSERT_TRUE(std::isfinite(v));
  }
  ExpectFiringMatchesPlanted(options.output_path, *report, counter.fired, kSequences * kLength);
}

INSTANTIATE_TEST_SUITE_P(
    Architectures, SynthRuntimeTest,
    ::testing::Values(Case{"llama", "custom:d=256,ff=1024,layers=4,heads=8,kv_heads=2,vocab=512",
                           "llama", DType::kQ4_0, std::nullopt},
                      Case{"opt", "custom:d=256,ff=1024,layers=4,heads=8,vocab=512,ctx=512", "opt",
                           DType::kQ4_0, std::nullopt},
                      Case{"opt_fatrelu", "custom:d=256,ff=1024,layers=3,heads=4,vocab=512,ctx=512",
                           "opt", DType::kQ8_0, SynthActivation::kFatRelu},
                      Case{"falcon", "custom:d=256,ff=1024,layers=4,heads=8,kv_heads=2,vocab=512",
                           "falcon", DType::kQ4_0, std::nullopt},
                      Case{"falcon_gelu",
                           "custom:d=256,ff=1024,layers=3,heads=8,kv_heads=2,vocab=512", "falcon",
                           DType::kQ8_0, SynthActivation::kGeluErf},
                      Case{"falcon_mqa_f16",
                           "custom:d=256,ff=1024,layers=3,heads=4,kv_heads=1,vocab=512", "falcon",
                           DType::kF16, std::nullopt}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

}  // namespace
}  // namespace pinfer::synth::testing
