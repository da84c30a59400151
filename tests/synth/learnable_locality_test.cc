// pi-synth's learnable locality (latent=K, bench/synth/README.md): on a small shape, the real
// tools — pi-profile's samples and pi-train-predictor at a fixed rank 32, below the 224 content
// dimensions — give a predictor whose validation recall is at least 0.99 at a predicted density
// at most 1.5x the true one, in every layer. With latent=0 (every neuron its own random direction)
// the same training selects about 1.6x the true density: the rank cannot span the directions.
// A --powerinfer-compatible predictor (no biases, threshold 0) of the same samples meets them too.
// The same holds for a gate-less OPT model (fc1's biases carry the thresholds, LayerNorm, learned
// positions): 1.36x and 1.33x the true density with latent=8, 4.3x and 3.5x with latent=0. Its
// compatible predictor is not held to the targets: without biases and without the llama model's
// constant bias channel in its input, nothing can carry a neuron's threshold (recall 0.97-0.98).
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/synth/synth_model.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/runtime/test_models.h"
#include "tests/synth/synth_test_util.h"

namespace pinfer::synth::testing {
namespace {

class LearnableLocalityTest : public ::testing::TestWithParam<const char*> {};

TEST_P(LearnableLocalityTest, ATrainedPredictorMeetsRecallAndDensityTargets) {
  const std::string arch = GetParam();
  ScratchDir scratch("learnable_locality_" + arch);
  SynthOptions options =
      SmallModelOptions("custom:d=256,ff=1024,layers=2,heads=4,vocab=512,ctx=256", DType::kQ8_0,
                        scratch.Path("model.pi"), "", arch);
  absl::StatusOr<LocalitySpec> locality =
      ParseLocality("power-law:alpha=1.5,hot=0.04,density=0.1,latent=8");
  ASSERT_TRUE(locality.ok()) << locality.status();
  options.locality = *locality;
  absl::StatusOr<SynthReport> report = WriteSyntheticModel(options);
  ASSERT_TRUE(report.ok()) << report.status();

  const test::ProgramResult profile = test::RunProgram(
      PI_PROFILE_PATH, {"-m", options.output_path, "--dataset",
                        test::SourcePath("tests/data/text/tinystories_valid_head.txt"),
                        "--max-tokens", "6000", "-c", "128", "--dump-samples", "-t", "1", "-q"});
  ASSERT_EQ(profile.exit_code, 0) << profile.err;
  const test::ProgramResult train = test::RunProgram(
      PI_TRAIN_PREDICTOR_PATH, {"-m", options.output_path, "--rank", "32", "--epochs", "6",
                                "--seed", "1", "-t", "1", "-q", "--json"});
  ASSERT_EQ(train.exit_code, 0) << train.err;
  const nlohmann::json json = nlohmann::json::parse(train.out, nullptr, false);
  ASSERT_TRUE(json.is_object() && json.contains("layers")) << train.out;
  ASSERT_EQ(json["layers"].size(), 2u);
  for (const nlohmann::json& layer : json["layers"]) {
    const double predicted = layer["predicted_density"].get<double>();
    const double truth = layer["true_density"].get<double>();
    EXPECT_GE(layer["recall"].get<double>(), 0.99) << layer.dump();
    EXPECT_NEAR(truth, 0.1, 0.03) << layer.dump();  // the planted density, as measured
    EXPECT_LE(predicted, 1.5 * truth) << layer.dump();
  }
  if (arch != "llama") return;

  // The same samples, trained for PowerInfer (no biases, decision at logit 0): the learnable
  // locality needs no per-layer threshold either. Without biases the trainer cannot centre the
  // inputs, and the bias channel's near-constant dimensions once swamped every hidden unit
  // (standardized by their tiny std): all died, and the predictor said "fires" for every neuron.
  const test::ProgramResult compatible = test::RunProgram(
      PI_TRAIN_PREDICTOR_PATH,
      {"-m", options.output_path, "--rank", "32", "--epochs", "4", "--seed", "1", "-t", "1", "-q",
       "--json", "--powerinfer-compatible", "-o", scratch.Path("compatible.predictor.pi")});
  ASSERT_EQ(compatible.exit_code, 0) << compatible.err;
  const nlohmann::json cj = nlohmann::json::parse(compatible.out, nullptr, false);
  ASSERT_TRUE(cj.is_object() && cj.contains("layers")) << compatible.out;
  for (const nlohmann::json& layer : cj["layers"]) {
    EXPECT_GE(layer["recall"].get<double>(), 0.98) << layer.dump();
    EXPECT_LE(layer["predicted_density"].get<double>(), 1.5 * layer["true_density"].get<double>())
        << layer.dump();
  }
}

INSTANTIATE_TEST_SUITE_P(Architectures, LearnableLocalityTest, ::testing::Values("llama", "opt"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.param);
                         });

}  // namespace
}  // namespace pinfer::synth::testing
