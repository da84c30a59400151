// pi-train-predictor as a program: defaults beside the model, the JSON report, progress lines on
// stderr, and one clear line (exit 1, nothing written) for bad flags and bad inputs.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "format/pi_file.h"
#include "format/sample_file.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/common/cli_common.h"
#include "runtime/model/predictor_weights.h"
#include "tests/runtime/test_models.h"
#include "tools/profile/profiler.h"

namespace pinfer {
namespace {

namespace fs = std::filesystem;
using test::BundledModel;

test::ProgramResult Train(const std::vector<std::string>& args) {
  return test::RunProgram(PI_TRAIN_PREDICTOR_PATH, args);
}

void ExpectOneLineError(const test::ProgramResult& r, const std::string& mention) {
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_TRUE(absl::StartsWith(r.err, "pi-train-predictor: error: ")) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, mention)) << r.err << " lacks " << mention;
}

class PiTrainPredictorCliTest : public ::testing::Test {
 protected:
  // relu-llama-260k in its own directory with 2000 tokens of samples beside it.
  static void SetUpTestSuite() {
    ProgressBar::SetEnabled(false);
    const fs::path dir = fs::path(test::ScratchDir()) / "train_predictor_cli";
    fs::create_directories(dir);
    model_ = new std::string((dir / "relu.pi").string());
    fs::copy_file(test::ConvertedModel(BundledModel::kReluLlama260K), *model_,
                  fs::copy_options::overwrite_existing);
    ProfileOptions options;
    options.model_path = *model_;
    options.datasets = {test::SourcePath("tests/data/text/tinystories_valid_head.txt")};
    options.max_tokens = 2000;
    options.dump_samples = true;
    options.threads = 1;
    options.progress = false;
    absl::StatusOr<ProfileReport> report = RunProfile(options);
    ASSERT_TRUE(report.ok()) << report.status();
  }
  static void TearDownTestSuite() { delete model_; }
  static std::string Base() { return model_->substr(0, model_->size() - 3); }
  static std::string* model_;
};
std::string* PiTrainPredictorCliTest::model_ = nullptr;

TEST_F(PiTrainPredictorCliTest, HelpHasAnExample) {
  const test::ProgramResult r = Train({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* s : {"Examples:", "pi-train-predictor -m", "--samples", "--rank", "auto",
                        "--target-recall", "--epochs", "--seed", "--dtype", "--json"}) {
    EXPECT_TRUE(absl::StrContains(r.out, s)) << s;
  }
}

TEST_F(PiTrainPredictorCliTest, WritesBesideTheModelAndReportsAsJson) {
  const test::ProgramResult r =
      Train({"-m", *model_, "--rank", "32", "--epochs", "2", "-t", "1", "--seed", "3", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["predictor"], Base() + ".predictor.pi");
  EXPECT_EQ(j["samples"], Base() + ".samples.zst");
  EXPECT_EQ(j["rank"], "32");
  EXPECT_EQ(j["seed"], 3);
  EXPECT_EQ(j["device"], "cpu");
  ASSERT_EQ(j["layers"].size(), 4u);
  for (const nlohmann::json& l : j["layers"]) {
    EXPECT_EQ(l["rank"], 32);
    EXPECT_GE(l["recall"].get<double>(), 0.99);
    EXPECT_GT(l["precision"].get<double>(), 0.0);
    EXPECT_GT(l["predicted_density"].get<double>(), 0.0);
    EXPECT_GT(l["true_density"].get<double>(), 0.0);
    EXPECT_GT(l["bytes"].get<int64_t>(), 0);
    EXPECT_GE(l["seconds"].get<double>(), 0.0);
  }
  EXPECT_TRUE(fs::exists(Base() + ".predictor.pi"));
  // Progress: loss and recall for every epoch of every layer.
  for (const char* s : {"layer 1/4 rank 32 epoch 1/2: loss ", "layer 4/4 rank 32 epoch 2/2",
                        "validation loss", "recall"}) {
    EXPECT_TRUE(absl::StrContains(r.err, s)) << s << " not in " << r.err;
  }
}

TEST_F(PiTrainPredictorCliTest, TextReportAndQuietFlag) {
  const std::string out = Base() + ".text.predictor.pi";
  const test::ProgramResult r =
      Train({"-m", *model_, "--rank", "32", "--epochs", "1", "-t", "1", "-q", "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  for (const char* s :
       {"layer", "recall", "precision", "predicted", "true", "size", "mean predicted density"}) {
    EXPECT_TRUE(absl::StrContains(r.out, s)) << s;
  }
  EXPECT_TRUE(fs::exists(out));
}

std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return std::move(s).str();
}

TEST_F(PiTrainPredictorCliTest, BadFlagsAndInputsGetOneLine) {
  const std::string out = Base() + ".bad.predictor.pi";
  // A truncated sample file, and a file that is not one at all.
  const std::string samples = FileBytes(Base() + ".samples.zst");
  const std::string truncated = Base() + ".truncated.samples.zst";
  std::ofstream(truncated, std::ios::binary) << samples.substr(0, samples.size() * 2 / 3);
  const std::string text = Base() + ".text.samples.zst";
  std::ofstream(text, std::ios::binary) << "Once upon a time there was a sample file.\n";
  struct Case {
    std::vector<std::string> args;
    std::string mention;
  };
  const std::vector<Case> cases = {
      {{"-m", *model_, "--rank", "0"}, "--rank must be a positive integer or 'auto'"},
      {{"-m", *model_, "--rank", "big"}, "--rank must be a positive integer or 'auto'"},
      {{"-m", *model_, "--target-recall", "1.5"}, "--target-recall"},
      {{"-m", *model_, "--dtype", "q4_0"}, "--dtype"},
      {{"-m", *model_, "--dtype", "int9"}, "--dtype must be auto, f16, q8_0 or f32"},
      {{"-m", *model_, "--rank", "40", "--dtype", "q8_0"}, "multiple of 32"},
      {{"-m", *model_, "--epochs", "0"}, "--epochs"},
      {{"-m", *model_, "--memory", "lots"}, "--memory"},
      {{"-m", *model_, "--device", "tpu"}, "--device"},
      {{"-m", *model_, "--no-such-flag"}, "--no-such-flag"},
      {{"--rank", "32"}, "--model"},
      {{"-m", *model_ + ".missing"}, ".missing"},
      {{"-m", *model_, "--samples", Base() + ".nothing.zst"}, ".nothing.zst"},
      {{"-m", *model_, "-o", *model_}, "would overwrite the model"},
      {{"-m", *model_, "-o", Base() + ".samples.zst"}, "would overwrite the sample file"},
      {{"-m", *model_, "--samples", truncated}, truncated},
      {{"-m", *model_, "--samples", text}, text},
      // Wrong kinds: a profile given as the model, a model given as the samples.
      {{"-m", Base() + ".profile.pi", "--samples", Base() + ".samples.zst"}, ".profile.pi"},
      {{"-m", *model_, "--samples", *model_}, *model_},
      {{"-m", *model_, "--density-margin", "-1"}, "--density-margin"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = c.args;
    if (std::find(args.begin(), args.end(), "-o") == args.end()) {
      args.insert(args.end(), {"-o", out});
    }
    SCOPED_TRACE(c.mention);
    ExpectOneLineError(Train(args), c.mention);
    EXPECT_FALSE(fs::exists(out));
  }
}

TEST_F(PiTrainPredictorCliTest, CudaOnlyWhereLibTorchHasIt) {
  const std::string out = Base() + ".cuda.predictor.pi";
  const test::ProgramResult r =
      Train({"-m", *model_, "--device", "cuda", "--rank", "32", "--epochs", "1", "-o", out, "-q"});
  if (r.exit_code == 0) GTEST_SKIP() << "this LibTorch has CUDA";
  ExpectOneLineError(r, "CPU-only");
  EXPECT_FALSE(fs::exists(out));
}

// The shared helper of tests/runtime/test_models.h, which runs scripts/make_predictor.sh: a
// predictor for the model beside it, reaching the target recall in every layer.
TEST(ReluModelWithPredictorTest, MakesAPredictorForTheModel) {
  const test::ModelWithPredictor& files = test::ReluModelWithPredictor();
  ASSERT_TRUE(fs::exists(files.profile));
  absl::StatusOr<std::unique_ptr<PiFile>> model = PiFile::Open(files.model);
  ASSERT_TRUE(model.ok()) << model.status();
  absl::StatusOr<PredictorWeights> p =
      PredictorWeights::Read(files.predictor, (*model)->ContentDigestHex());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->n_layers(), 4);
  EXPECT_EQ(p->dtype, DType::kQ8_0);  // --dtype auto: q8_0 holds the recall here
  for (const PredictorLayer& l : p->layers) {
    EXPECT_EQ(l.rank, 64);
    EXPECT_GE(l.report.recall, 0.99);
    EXPECT_GT(l.report.predicted_density, l.report.true_density);
    EXPECT_LT(l.report.predicted_density, 2 * l.report.true_density);
  }
  // Made once per process.
  EXPECT_EQ(&test::ReluModelWithPredictor(), &files);
}

}  // namespace
}  // namespace pinfer
