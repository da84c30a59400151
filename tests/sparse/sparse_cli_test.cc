// pi-run's sparse flags end to end (the flags live in RuntimeFlags, so pi-server has them too):
// oracle sparse perplexity equals dense on the ReLU model, --check reports, a calibrated SiLU model
// runs with its profile's thresholds, and bad inputs give one clear error line.
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "format/dtype.h"
#include "format/pi_file.h"
#include "format/quant.h"
#include "format/strings.h"
#include "format/file_access.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/model/predictor_weights.h"
#include "tests/runtime/test_models.h"

namespace pinfer {
namespace {

using test::BundledModel;

test::ProgramResult PiRun(const std::vector<std::string>& args) {
  return test::RunProgram(PI_RUN_PATH, args);
}

std::string Relu() { return test::ConvertedModel(BundledModel::kReluLlama260K); }
std::string TinyStories() { return test::SourcePath("tests/data/text/tinystories_valid_head.txt"); }

// A copy of a bundled model under its own name in the scratch directory, so that files beside it
// (profile, predictor) belong to this test only.
std::string CopyModel(const std::string& from, const std::string& name) {
  const std::string to = test::ScratchDir() + "/" + name + ".pi";
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
  return to;
}

// A predictor with random f16 weights (rank 32) for the model at `model_path`, written to `path`:
// a real, loadable artifact for the plumbing (selection, checks, errors); not a trained one.
void WriteRandomPredictor(const std::string& model_path, const std::string& path,
                          const std::string& fire_rule, int64_t rank = 32) {
  absl::StatusOr<std::unique_ptr<PiFile>> model = PiFile::Open(model_path);
  ASSERT_TRUE(model.ok()) << model.status();
  const int64_t dim = *(*model)->GetInt("llama.dim");
  const int64_t n_ff = *(*model)->GetInt("llama.n_ff");
  const int64_t n_layers = *(*model)->GetInt("llama.n_layers");
  struct Buffers {
    std::vector<std::vector<uint8_t>> weights;
    std::vector<std::vector<float>> biases;
  };
  auto buffers = std::make_shared<Buffers>();
  buffers->weights.reserve(2 * n_layers);
  buffers->biases.reserve(2 * n_layers);
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  auto encode = [&](int64_t rows, int64_t cols) {
    std::vector<float> values(static_cast<size_t>(rows * cols));
    for (float& v : values) v = normal(rng);
    std::vector<uint8_t> bytes(static_cast<size_t>(rows * cols * 2));
    EXPECT_TRUE(EncodeRow(values.data(), values.size(), DType::kF16, bytes.data()).ok());
    return bytes;
  };
  PredictorWeights p;
  p.model_digest = (*model)->ContentDigestHex();
  p.dim = dim;
  p.n_ff = n_ff;
  p.dtype = DType::kF16;
  p.target_recall = 0.99;
  p.fire_rule = fire_rule;
  for (int64_t l = 0; l < n_layers; ++l) {
    PredictorLayer layer;
    layer.rank = rank;
    layer.logit_threshold = 0.0f;
    layer.threshold = SigmoidOf(0.0);
    buffers->weights.push_back(encode(rank, dim));
    layer.w1 = buffers->weights.back();
    buffers->biases.emplace_back(static_cast<size_t>(rank), 0.1f);
    layer.b1 = buffers->biases.back();
    buffers->weights.push_back(encode(n_ff, rank));
    layer.w2 = buffers->weights.back();
    buffers->biases.emplace_back(static_cast<size_t>(n_ff), 0.0f);
    layer.b2 = buffers->biases.back();
    p.layers.push_back(layer);
  }
  p.storage = buffers;
  ASSERT_TRUE(p.Write(path).ok());
}

void ExpectOneLineError(const test::ProgramResult& r, const char* mention) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(r.out.empty()) << r.out;
  ASSERT_TRUE(absl::EndsWith(r.err, "\n")) << r.err;
  const std::string_view err = std::string_view(r.err).substr(0, r.err.size() - 1);
  const std::string_view last = err.substr(err.rfind('\n') + 1);
  EXPECT_TRUE(absl::StartsWith(Sv(last), "pi-run: error: ")) << r.err;
  EXPECT_TRUE(absl::StrContains(Sv(last), mention)) << r.err << " lacks " << mention;
}

double FinalPpl(const test::ProgramResult& r) {
  const std::string key = "Final estimate: PPL = ";
  const size_t at = r.out.find(key);
  if (at == std::string::npos) return -1.0;
  double ppl = -1.0;
  const std::string rest = r.out.substr(at + key.size());
  EXPECT_TRUE(absl::SimpleAtod(rest.substr(0, rest.find(' ')), &ppl)) << r.out;
  return ppl;
}

TEST(SparseCliTest, OracleSparsePerplexityEqualsDenseOnTheReluModel) {
  const std::vector<std::string> common = {
      "-m", Relu(), "--perplexity", TinyStories(), "-c", "128", "--chunks", "4", "-t", "1"};
  std::vector<std::string> dense_args = common;
  dense_args.push_back("--dense");
  const test::ProgramResult dense = PiRun(dense_args);
  ASSERT_EQ(dense.exit_code, 0) << dense.err;
  EXPECT_TRUE(absl::StrContains(dense.err, "ffn: dense")) << dense.err;

  std::vector<std::string> sparse_args = common;
  for (const char* a : {"--oracle-sparse", "--check"}) sparse_args.push_back(a);
  const test::ProgramResult sparse = PiRun(sparse_args);
  ASSERT_EQ(sparse.exit_code, 0) << sparse.err;
  EXPECT_NEAR(FinalPpl(sparse), FinalPpl(dense), 1e-4 * FinalPpl(dense));
  for (const char* line : {"ffn: sparse (oracle selection", "mean selected density",
                           "MB read per token", "check: layer  0: selected density",
                           "check: all layers", "recall 1.0000, false-negative mass 0.0000"}) {
    EXPECT_TRUE(absl::StrContains(sparse.err, line)) << sparse.err << " lacks " << line;
  }
}

TEST(SparseCliTest, CalibratedSiluModelRunsWithItsProfilesThresholds) {
  const std::string model =
      CopyModel(test::ConvertedModel(BundledModel::kStories260K), "calibrated_stories");
  // Without a calibrated profile, sparse execution of a SiLU model is refused.
  ExpectOneLineError(PiRun({"-m", model, "--oracle-sparse", "-p", "Once", "-n", "2"}),
                     "pi-profile --target-sparsity");
  const test::ProgramResult profile = test::RunProgram(
      PI_PROFILE_PATH, {"-m", model, "--dataset", TinyStories(), "--target-sparsity", "0.5",
                        "--max-tokens", "2048", "-c", "128", "-t", "1", "-q"});
  ASSERT_EQ(profile.exit_code, 0) << profile.err;
  const test::ProgramResult r = PiRun({"-m", model, "--oracle-sparse", "--check", "--perplexity",
                                       TinyStories(), "-c", "128", "--chunks", "4", "-t", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GT(FinalPpl(r), 1.0);
  EXPECT_TRUE(absl::StrContains(r.err, "recall 1.0000")) << r.err;
  // The thresholds calibrated for 50% sparsity select about half of the neurons.
  const size_t at = r.err.find("check: all layers: selected density ");
  ASSERT_NE(at, std::string::npos) << r.err;
  double density = 0.0;
  ASSERT_TRUE(absl::SimpleAtod(r.err.substr(at + 36, 5), &density)) << r.err;
  EXPECT_NEAR(density, 0.5, 0.1);

  // The thresholds change the model's output, so the default (auto) leaves them alone unless
  // asked: without a predictor, the calibrated model runs as it is; --sparse-mode auto runs the
  // thresholded model, whose perplexity is higher.
  const std::vector<std::string> ppl = {"-m", model, "--perplexity", TinyStories(), "-c", "128",
                                        "--chunks", "4", "-t", "1"};
  std::vector<std::string> dense_ppl = ppl, auto_ppl = ppl;
  dense_ppl.push_back("--dense");
  for (const char* a : {"--sparse-mode", "auto"}) auto_ppl.push_back(a);
  const test::ProgramResult by_default = PiRun(ppl);
  const test::ProgramResult dense = PiRun(dense_ppl);
  const test::ProgramResult thresholded = PiRun(auto_ppl);
  for (const test::ProgramResult* run : {&by_default, &dense, &thresholded}) {
    ASSERT_EQ(run->exit_code, 0) << run->err;
  }
  EXPECT_EQ(FinalPpl(by_default), FinalPpl(dense)) << by_default.err;
  EXPECT_TRUE(absl::StrContains(by_default.err, "ffn: dense")) << by_default.err;
  EXPECT_GT(FinalPpl(thresholded), FinalPpl(dense) * 1.01) << thresholded.err;
}

TEST(SparseCliTest, ExactModeGivesTheDenseTextAndPerplexity) {
  const std::vector<std::string> generate = {"-m", Relu(), "-p", "Once upon a time", "-n",
                                             "200", "--temp", "0", "-t", "1"};
  std::vector<std::string> dense_args = generate, exact_args = generate;
  dense_args.push_back("--dense");
  for (const char* a : {"--sparse-mode", "exact"}) exact_args.push_back(a);
  const test::ProgramResult dense = PiRun(dense_args);
  const test::ProgramResult exact = PiRun(exact_args);
  ASSERT_EQ(dense.exit_code, 0) << dense.err;
  ASSERT_EQ(exact.exit_code, 0) << exact.err;
  EXPECT_GT(dense.out.size(), 100u);
  EXPECT_EQ(exact.out, dense.out);
  EXPECT_TRUE(absl::StrContains(exact.err, "ffn: sparse (exact gate-first selection")) << exact.err;

  const std::vector<std::string> ppl = {"-m", Relu(), "--perplexity", TinyStories(), "-c", "128",
                                        "--chunks", "4", "-t", "1"};
  std::vector<std::string> dense_ppl = ppl, exact_ppl = ppl;
  dense_ppl.push_back("--dense");
  for (const char* a : {"--sparse-mode", "exact", "--check"}) exact_ppl.push_back(a);
  const test::ProgramResult d = PiRun(dense_ppl);
  const test::ProgramResult e = PiRun(exact_ppl);
  ASSERT_EQ(d.exit_code, 0) << d.err;
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_NEAR(FinalPpl(e), FinalPpl(d), 1e-4 * FinalPpl(d));
  EXPECT_TRUE(absl::StrContains(e.err, "recall 1.0000, false-negative mass 0.0000")) << e.err;
}

TEST(SparseCliTest, SparseModesNameWhatIsMissing) {
  const std::string stories =
      CopyModel(test::ConvertedModel(BundledModel::kStories260K), "exact_without_profile");
  ExpectOneLineError(PiRun({"-m", stories, "--sparse-mode", "exact", "-p", "x"}),
                     "pi-profile --target-sparsity");
  const std::string relu = CopyModel(Relu(), "predictor_mode_without_predictor");
  ExpectOneLineError(PiRun({"-m", relu, "--sparse-mode", "predictor", "-p", "x"}),
                     "scripts/make_predictor.sh");
  ExpectOneLineError(PiRun({"-m", relu, "--sparse-mode", "fast", "-p", "x"}),
                     "--sparse-mode must be auto, exact or predictor");
  ExpectOneLineError(PiRun({"-m", relu, "--sparse-mode", "auto", "--dense", "-p", "x"}),
                     "--sparse-mode auto");
  // Auto asked for on a SiLU model without thresholds: what is missing and how to make it.
  ExpectOneLineError(PiRun({"-m", stories, "--sparse-mode", "auto", "-p", "x"}),
                     "pi-profile --target-sparsity");
  ExpectOneLineError(PiRun({"-m", stories, "--sparse-mode", "predictor", "-p", "x"}),
                     "scripts/make_predictor.sh");
  // By default the same model runs dense, saying nothing of sparse modes.
  const test::ProgramResult plain = PiRun({"-m", stories, "-p", "x", "-n", "2", "-t", "1"});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_TRUE(absl::StrContains(plain.err, "pi-run: ffn: dense\n")) << plain.err;
  EXPECT_FALSE(absl::StrContains(plain.err, "auto")) << plain.err;
  ExpectOneLineError(PiRun({"-m", relu, "--sparse-mode", "exact", "--dense", "-p", "x"}),
                     "--sparse-mode exact");
}

// Auto is the default on a ReLU model: its greedy text is the dense one for 200 tokens, and a
// predictor larger than the layer's FFN (rank 96: 50 KB a layer against 39 KB of q8_0 FFN) is
// never chosen, although `--sparse-mode predictor` runs it. The stderr report and --json give
// per layer the mode chosen for decode and for prompts, the bytes per token (predictor
// included) and the effective GB/s.
TEST(SparseCliTest, AutoIsTheDefaultAndNeverRunsAPredictorThatCostsMoreThanItSaves) {
  const std::string model = CopyModel(Relu(), "relu_auto");
  WriteRandomPredictor(model, test::ScratchDir() + "/relu_auto.predictor.pi", "nonzero", 96);
  const std::string json = test::ScratchDir() + "/relu_auto.json";
  const std::vector<std::string> generate = {"-m", model, "-p", "Once upon a time", "-n",
                                             "200", "--temp", "0", "-t", "1"};
  std::vector<std::string> dense_args = generate, auto_args = generate, forced_args = generate;
  dense_args.push_back("--dense");
  for (const std::string& a : {std::string("--json"), json}) auto_args.push_back(a);
  for (const std::string& a : {std::string("--sparse-mode"), std::string("predictor"),
                               std::string("--json"), json + ".predictor"}) {
    forced_args.push_back(a);
  }
  const test::ProgramResult dense = PiRun(dense_args);
  const test::ProgramResult automatic = PiRun(auto_args);
  const test::ProgramResult forced = PiRun(forced_args);
  ASSERT_EQ(dense.exit_code, 0) << dense.err;
  ASSERT_EQ(automatic.exit_code, 0) << automatic.err;
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_GT(dense.out.size(), 100u);
  EXPECT_EQ(automatic.out, dense.out);
  EXPECT_NE(forced.out, dense.out);  // a random predictor misses neurons
  EXPECT_TRUE(absl::StrContains(automatic.err, "ffn: sparse (auto selection")) << automatic.err;
  EXPECT_TRUE(absl::StrContains(automatic.err, "ffn: layer  3: decode ")) << automatic.err;
  EXPECT_TRUE(absl::StrContains(forced.err, "ffn: layer  3: decode predictor; prompts predictor"))
      << forced.err;

  const uint64_t ffn_bytes = 3ull * 192 * 64 / 32 * 34;  // gate, up, down of a q8_0 layer
  auto read = [](const std::string& path) {
    absl::StatusOr<std::string> text = ReadRegularFile(path);
    EXPECT_TRUE(text.ok()) << text.status();
    return nlohmann::json::parse(text.ok() ? *text : "{}", nullptr, false);
  };
  const nlohmann::json a = read(json), p = read(json + ".predictor");
  ASSERT_TRUE(a.contains("ffn_layers")) << a.dump();
  ASSERT_TRUE(p.contains("ffn_layers")) << p.dump();
  EXPECT_EQ(a["ffn_mode"], "sparse");
  EXPECT_EQ(a["decode"]["tokens"], 199);
  EXPECT_GT(a["decode"]["tokens_per_second"].get<double>(), 0.0);
  ASSERT_EQ(a["ffn_layers"].size(), 4u);
  for (const nlohmann::json& layer : a["ffn_layers"]) {
    EXPECT_EQ(layer["calls"]["decode"]["predictor"], 0) << layer.dump();
    EXPECT_EQ(layer["calls"]["prompt"]["predictor"], 0) << layer.dump();
    EXPECT_EQ(layer["calls"]["decode"]["dense"].get<int64_t>() +
                  layer["calls"]["decode"]["exact"].get<int64_t>(),
              199)
        << layer.dump();
    EXPECT_NE(layer["decode_mode"], "-");
    EXPECT_EQ(layer["predictor_bytes_per_token"], 0.0);
    // Exact reads the gate rows and those of the neurons that fire: between a third and all.
    const double bytes = layer["bytes_per_token"].get<double>();
    EXPECT_GE(bytes, ffn_bytes / 3.0) << layer.dump();
    EXPECT_LE(bytes, 1.0 * ffn_bytes) << layer.dump();
    EXPECT_GT(layer["effective_gbps"].get<double>(), 0.0) << layer.dump();
  }
  for (const nlohmann::json& layer : p["ffn_layers"]) {
    EXPECT_EQ(layer["decode_mode"], "predictor") << layer.dump();
    // Read once per call: 199 decode calls and one prompt call over 204 tokens.
    const double predictor_bytes = 96 * 64 * 2 + 192 * 96 * 2 + 4 * (96 + 192);
    EXPECT_NEAR(layer["predictor_bytes_per_token"].get<double>(), predictor_bytes * 200 / 204,
                1.0)
        << layer.dump();
    EXPECT_GT(layer["bytes_per_token"].get<double>(), ffn_bytes) << layer.dump();
  }
}

// The script the errors above point to: --help prints its usage (and only that) and exits 0; too
// few arguments print it on stderr and exit 2.
TEST(SparseCliTest, MakePredictorPrintsItsUsage) {
  const std::string script = test::SourcePath("scripts/make_predictor.sh");
  const test::ProgramResult help = test::RunProgram("bash", {script, "--help"});
  EXPECT_EQ(help.exit_code, 0) << help.err;
  EXPECT_TRUE(absl::StartsWith(help.out, "Makes the activation predictor")) << help.out;
  EXPECT_TRUE(absl::StrContains(help.out, "Usage: scripts/make_predictor.sh MODEL.pi DATASET"));
  EXPECT_FALSE(absl::StrContains(help.out, "set -")) << help.out;
  const test::ProgramResult missing = test::RunProgram("bash", {script, "model.pi"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_TRUE(missing.out.empty()) << missing.out;
  EXPECT_TRUE(absl::StrContains(missing.err, "Usage: scripts/make_predictor.sh")) << missing.err;
}

TEST(SparseCliTest, BadFlagsGiveOneLine) {
  ExpectOneLineError(PiRun({"-m", Relu(), "--dense", "--check", "-p", "x"}), "--dense");
  const std::string plain = CopyModel(test::ConvertedModel(BundledModel::kStories260K), "plain_check");
  ExpectOneLineError(PiRun({"-m", plain, "--check", "-p", "x"}), "--check needs sparse");
  ExpectOneLineError(PiRun({"-m", plain, "--check", "-p", "x"}), "pi-profile --target-sparsity");
  ExpectOneLineError(PiRun({"-m", Relu(), "--oracle-sparse", "--sparse-crossover", "2", "-p", "x"}),
                     "--sparse-crossover");
  ExpectOneLineError(PiRun({"-m", Relu(), "--predictor", "/nonexistent/p.predictor.pi", "-p", "x"}),
                     "/nonexistent/p.predictor.pi");
  // A profile made for another model.
  const std::string other = CopyModel(Relu(), "other_relu");
  const test::ProgramResult profile =
      test::RunProgram(PI_PROFILE_PATH, {"-m", other, "--dataset", TinyStories(), "--max-tokens",
                                         "256", "-c", "64", "-t", "1", "-q", "-o",
                                         test::ScratchDir() + "/relu_for_stories.profile.pi"});
  ASSERT_EQ(profile.exit_code, 0) << profile.err;
  const std::string stories =
      CopyModel(test::ConvertedModel(BundledModel::kStories260K), "stories_with_wrong_profile");
  ExpectOneLineError(PiRun({"-m", stories, "--oracle-sparse", "--profile",
                            test::ScratchDir() + "/relu_for_stories.profile.pi", "-p", "x"}),
                     "relu_for_stories.profile.pi");
}

TEST(SparseCliTest, PredictorBesideTheModelMakesExecutionSparse) {
  const std::string model = CopyModel(Relu(), "relu_with_predictor");
  const std::string beside = test::ScratchDir() + "/relu_with_predictor.predictor.pi";
  WriteRandomPredictor(model, beside, "nonzero");
  const test::ProgramResult r = PiRun(
      {"-m", model, "-p", "Once upon a time", "-n", "8", "--temp", "0", "-t", "1", "--check"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(r.out.empty());
  // Auto by default, the predictor one of its candidates.
  for (const char* line : {"ffn: sparse (auto selection", "or the predictor ", "check: all layers",
                           "recall "}) {
    EXPECT_TRUE(absl::StrContains(r.err, line)) << r.err << " lacks " << line;
  }
  const test::ProgramResult forced =
      PiRun({"-m", model, "-p", "Once upon a time", "-n", "8", "--temp", "0", "-t", "1",
             "--sparse-mode", "predictor"});
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_TRUE(absl::StrContains(forced.err, "ffn: sparse (predictor selection")) << forced.err;
  const test::ProgramResult dense = PiRun(
      {"-m", model, "-p", "Once upon a time", "-n", "8", "--temp", "0", "-t", "1", "--dense"});
  ASSERT_EQ(dense.exit_code, 0) << dense.err;
  EXPECT_TRUE(absl::StrContains(dense.err, "ffn: dense")) << dense.err;
}

TEST(SparseCliTest, PredictorForAnotherModelIsRejected) {
  const std::string stories = test::ConvertedModel(BundledModel::kStories260K);
  const std::string other = test::ScratchDir() + "/stories.predictor.pi";
  WriteRandomPredictor(stories, other, "nonzero");
  ExpectOneLineError(PiRun({"-m", Relu(), "--predictor", other, "-p", "x"}), "another model");
  // The right model, but trained on the calibrated firing rule while this model has exact zeros.
  const std::string rule = test::ScratchDir() + "/relu_threshold.predictor.pi";
  WriteRandomPredictor(Relu(), rule, "threshold");
  ExpectOneLineError(PiRun({"-m", Relu(), "--predictor", rule, "-p", "x"}), "firing rule");
}

}  // namespace
}  // namespace pinfer
