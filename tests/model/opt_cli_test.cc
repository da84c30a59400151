// The tools end to end on a tiny random OPT: pi-convert's refusals of the OPT variants it does not
// run (one line naming config.json and the field), pi-run's greedy text dense and with exact
// gate-first selection (identical), and the sparse pipeline unchanged on a gate-less FFN:
// pi-profile, pi-train-predictor, pi-run with the predictor (--check reports its recall), and
// pi-place's plan run on the CPU stand-in.
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/convert/test_util.h"
#include "tests/model/opt_fixture.h"

namespace pinfer {
namespace {

using testing::RunTool;
using testing::ToolResult;

void ExpectOneLineError(const ToolResult& r, const std::vector<std::string>& parts) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  for (const std::string& p : parts) EXPECT_NE(r.err.find(p), std::string::npos) << r.err;
}

TEST(OptCliTest, UnsupportedVariantsAreRefusedNamingTheField) {
  const std::string dir = testing::ScratchDir("variants");
  const testing::OptModel hf = testing::WriteOptModel(dir + "/hf", {.n_layers = 1});
  const struct {
    const char* key;
    nlohmann::json value;
    std::vector<std::string> expected;
  } cases[] = {
      {"do_layer_norm_before", false, {"config.json", "'do_layer_norm_before' false", "post-norm"}},
      {"word_embed_proj_dim", 32, {"config.json", "'word_embed_proj_dim' 32", "project_in"}},
      {"activation_function", "gelu", {"config.json", "activation_function 'gelu'"}},
      {"enable_bias", false, {"config.json", "'enable_bias' false"}},
      {"ffn_dim", nullptr, {"config.json", "ffn_dim"}},
  };
  for (const auto& c : cases) {
    nlohmann::json config = hf.config;
    if (c.value.is_null()) {
      config.erase(c.key);
    } else {
      config[c.key] = c.value;
    }
    testing::WriteFileText(hf.dir + "/config.json", config.dump());
    ExpectOneLineError(RunTool("pi-convert", {hf.dir, "-o", dir + "/x.pi", "-q"}), c.expected);
  }
}

class OptPipelineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(testing::ScratchDir("pipeline"));
    const testing::OptModel hf = testing::WriteOptModel(*dir_ + "/hf");
    model_ = new std::string(*dir_ + "/opt.pi");
    const ToolResult r = RunTool("pi-convert", {hf.dir, "-o", *model_, "-q"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static std::vector<std::string> Run(std::vector<std::string> extra) {
    std::vector<std::string> args = {"-m", *model_, "-p", "Once upon a time", "-n", "16", "--temp",
                                     "0",  "-t",    "1",  "--seed",           "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  static std::string* dir_;
  static std::string* model_;
};
std::string* OptPipelineTest::dir_ = nullptr;
std::string* OptPipelineTest::model_ = nullptr;

TEST_F(OptPipelineTest, ExactSelectionGivesTheDenseText) {
  const ToolResult dense = RunTool("pi-run", Run({"--dense"}));
  ASSERT_EQ(dense.exit_code, 0) << dense.err;
  EXPECT_GT(dense.out.size(), std::string("Once upon a time").size()) << dense.out;
  const ToolResult exact = RunTool("pi-run", Run({"--sparse-mode", "exact"}));
  ASSERT_EQ(exact.exit_code, 0) << exact.err;
  EXPECT_EQ(dense.out, exact.out);
  EXPECT_NE(exact.err.find("exact gate-first"), std::string::npos) << exact.err;
}

TEST_F(OptPipelineTest, ProfilePredictorAndPlanRunOnAGateLessFfn) {
#ifndef PINFER_HAVE_TRAINER
  GTEST_SKIP() << "pi-train-predictor (LibTorch) is not in this build";
#endif
  const std::string text = testing::RepoPath("tests/data/text/tinystories_valid_head.txt");
  ToolResult r = RunTool("pi-profile", {"-m", *model_, "--dataset", text, "--max-tokens", "1500",
                                        "--dump-samples", "-t", "1", "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string base = *dir_ + "/opt";
  ASSERT_TRUE(std::filesystem::exists(base + ".profile.pi"));
  r = RunTool("pi-train-predictor",
              {"-m", *model_, "--rank", "16", "--epochs", "2", "-t", "1", "--seed", "1", "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(std::filesystem::exists(base + ".predictor.pi"));
  const ToolResult predicted = RunTool("pi-run", Run({"--predictor", base + ".predictor.pi",
                                                      "--sparse-mode", "predictor", "--check"}));
  ASSERT_EQ(predicted.exit_code, 0) << predicted.err;
  EXPECT_NE(predicted.err.find("recall"), std::string::npos) << predicted.err;
  EXPECT_GT(predicted.out.size(), std::string("Once upon a time").size());

  // pi-place's plan (the budget holds every layer's attention and FFN, not the classifier), run on
  // the CPU stand-in with exact selection: the dense text.
  r = RunTool("pi-place", {"-m", *model_, "--vram", "4.8M", "-o", base + ".plan.pi", "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const ToolResult dense = RunTool("pi-run", Run({"--dense", "--plan", "none"}));
  ASSERT_EQ(dense.exit_code, 0) << dense.err;
  const ToolResult planned =
      RunTool("pi-run",
              Run({"--sparse-mode", "exact", "--plan", base + ".plan.pi", "--gpu-backend", "cpu"}));
  ASSERT_EQ(planned.exit_code, 0) << planned.err;
  EXPECT_EQ(dense.out, planned.out);
  EXPECT_NE(planned.err.find("GPU part runs on the CPU"), std::string::npos) << planned.err;
}

}  // namespace
}  // namespace pinfer
