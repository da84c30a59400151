// pi-profile end to end: outputs beside the model, the text and JSON reports, and one clear line
// for bad flags.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "format/strings.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/model/activation_profile.h"
#include "tests/runtime/test_models.h"

namespace pinfer {
namespace {

namespace fs = std::filesystem;
using test::BundledModel;

test::ProgramResult PiProfile(const std::vector<std::string>& args) {
  return test::RunProgram(PI_PROFILE_PATH, args);
}

std::string Stories() { return test::SourcePath("tests/data/text/tinystories_valid_head.txt"); }

// A copy of a bundled model (the ReLU one unless told) in its own directory, so that the default
// outputs land beside it.
std::string ModelInOwnDirectory(const std::string& dir_name,
                                BundledModel which = BundledModel::kReluLlama260K) {
  const fs::path dir = fs::path(test::ScratchDir()) / dir_name;
  fs::create_directories(dir);
  const fs::path model = dir / "model.pi";
  fs::copy_file(test::ConvertedModel(which), model, fs::copy_options::overwrite_existing);
  return model.string();
}

void ExpectOneLineError(const test::ProgramResult& r, const std::string& mention) {
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_TRUE(absl::StartsWith(r.err, "pi-profile: error: ")) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, mention)) << r.err << " lacks " << mention;
}

TEST(PiProfileCliTest, HelpHasAnExample) {
  const test::ProgramResult r = PiProfile({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* s : {"Examples:", "pi-profile -m", "--dataset", "--target-sparsity",
                        "--dump-samples", "--sample-every", "--json"}) {
    EXPECT_TRUE(absl::StrContains(r.out, s)) << s;
  }
}

TEST(PiProfileCliTest, WritesBesideTheModelAndReportsAsJson) {
  const std::string model = ModelInOwnDirectory("cli_json");
  const test::ProgramResult r = PiProfile({"-m", model, "--dataset", Stories(), "--max-tokens",
                                           "640", "--dump-samples", "--json", "-q", "-t", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;  // -q
  const nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["tokens"], 640);
  EXPECT_EQ(j["chunks"], 10);
  EXPECT_EQ(j["layers"].size(), 4u);
  EXPECT_GT(j["tokens_per_second"].get<double>(), 0.0);
  EXPECT_GT(j["layers"][0]["density"].get<double>(), 0.0);
  const std::string base = model.substr(0, model.size() - 3);
  EXPECT_EQ(j["profile"], base + ".profile.pi");
  EXPECT_EQ(j["plot"], base + ".profile.svg");
  EXPECT_EQ(j["samples"]["path"], base + ".samples.zst");
  EXPECT_EQ(j["samples"]["samples_per_layer"], 640);
  for (const char* suffix : {".profile.pi", ".profile.svg", ".samples.zst"}) {
    EXPECT_TRUE(fs::exists(base + suffix)) << suffix;
  }
}

TEST(PiProfileCliTest, TextReportOnStdout) {
  const std::string model = ModelInOwnDirectory("cli_text");
  const test::ProgramResult r =
      PiProfile({"-m", model, "--dataset", Stories(), "--max-tokens", "128", "-o",
                 fs::path(model).parent_path().string() + "/named.profile.pi"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* s : {"4 layers x 192 neurons", "shifted_relu:0.25", "tokens/s", "density",
                        "neurons for 80%/90%/99%", "named.profile.pi", "named.profile.svg"}) {
    EXPECT_TRUE(absl::StrContains(r.out, s)) << r.out << " lacks " << s;
  }
}

// The README's held-back evaluation: a second profile of a SiLU model with the first one's
// thresholds (not calibrated again on the new text); a profile of another model is refused.
TEST(PiProfileCliTest, ThresholdsFromAnotherProfileOfTheModel) {
  const std::string model = ModelInOwnDirectory("cli_thresholds", BundledModel::kStories260K);
  const std::string dir = fs::path(model).parent_path().string();
  const std::string calibrated = dir + "/calibrated.profile.pi";
  const test::ProgramResult first =
      PiProfile({"-m", model, "--dataset", Stories(), "--max-tokens", "512", "--target-sparsity",
                 "0.6", "-q", "-t", "1", "-o", calibrated});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  absl::StatusOr<ActivationProfile> source = ActivationProfile::Read(calibrated);
  ASSERT_TRUE(source.ok()) << source.status();
  ASSERT_TRUE(source->calibrated());

  // Another text (a sentence of its own) and another length: calibrating here would give other
  // thresholds.
  const std::string held_back = dir + "/held_back.txt";
  std::ofstream(held_back) << "The little dog ran to the park. He saw a big red ball and a cat.\n";
  const std::string reused = dir + "/reused.profile.pi";
  const test::ProgramResult second =
      PiProfile({"-m", model, "--dataset", held_back, "--thresholds-from", calibrated, "--json",
                 "-q", "-t", "1", "-o", reused});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  const nlohmann::json j = nlohmann::json::parse(second.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << second.out;
  EXPECT_EQ(j["thresholds_from"], calibrated);
  absl::StatusOr<ActivationProfile> profile = ActivationProfile::Read(reused);
  ASSERT_TRUE(profile.ok()) << profile.status();
  EXPECT_EQ(profile->threshold, source->threshold);
  EXPECT_DOUBLE_EQ(profile->target_sparsity, 0.6);
  EXPECT_NE(profile->tokens, source->tokens);

  // The ReLU model's profile is for another model.
  const std::string relu = ModelInOwnDirectory("cli_thresholds_relu");
  const test::ProgramResult relu_profile =
      PiProfile({"-m", relu, "--dataset", Stories(), "--max-tokens", "64", "-q", "-t", "1"});
  ASSERT_EQ(relu_profile.exit_code, 0) << relu_profile.err;
  const std::string relu_profile_path = relu.substr(0, relu.size() - 3) + ".profile.pi";
  ExpectOneLineError(PiProfile({"-m", model, "--dataset", held_back, "--thresholds-from",
                                relu_profile_path, "-o", dir + "/other.profile.pi"}),
                     "another model");
  EXPECT_FALSE(fs::exists(dir + "/other.profile.pi"));
}

TEST(PiProfileCliTest, BadFlagsAreOneLine) {
  const std::string model = test::ConvertedModel(BundledModel::kReluLlama260K);
  ExpectOneLineError(PiProfile({"-m", model}), "--dataset");
  ExpectOneLineError(PiProfile({"-m", model, "--dataset", Stories(), "--sample-dtype", "q8_0"}),
                     "--sample-dtype");
  ExpectOneLineError(PiProfile({"-m", model, "--dataset", Stories(), "--sample-every", "2"}),
                     "--sample-every needs --dump-samples");
  ExpectOneLineError(PiProfile({"-m", model, "--dataset", Stories(), "--target-sparsity", "0"}),
                     "--target-sparsity");
  ExpectOneLineError(PiProfile({"-m", model, "--dataset", "/no/such/file.txt"}),
                     "/no/such/file.txt: no such file");
  ExpectOneLineError(PiProfile({"-m", model, "--dataset", Stories(), "--max-tokens", "x"}),
                     "--max-tokens");
}

}  // namespace
}  // namespace pinfer
