#include "tests/place/test_models.h"

#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tools/convert/converter.h"
#include "tools/convert/llama2c_source.h"

namespace pinfer::testing_support {
namespace {

ConvertOptions NoProgress() {
  ConvertOptions options;
  options.progress = false;
  return options;
}

std::string Convert(const std::string& name, const std::string& checkpoint,
                    const std::string& tokenizer, const std::string& ffn_act,
                    const std::string& norm_act) {
  const std::string models = std::string(PINFER_SOURCE_DIR) + "/models/";
  Llama2cOptions options;
  options.tokenizer_path = models + tokenizer;
  options.ffn_act = *Activation::Parse(ffn_act);
  options.norm_act = *Activation::Parse(norm_act, /*for_norm=*/true);
  absl::StatusOr<SourceModel> source = ReadLlama2c(models + checkpoint, options);
  EXPECT_TRUE(source.ok()) << source.status();
  if (!source.ok()) return "";
  const std::string path = TempPath(name);
  absl::StatusOr<ConvertReport> report = ConvertModel(*source, path, NoProgress());
  EXPECT_TRUE(report.ok()) << report.status();
  return report.ok() ? path : "";
}

std::filesystem::path TempDirectory() {
  return std::filesystem::path(::testing::TempDir()) / absl::StrCat("pinfer_place_", getpid());
}

// Removes this process's temporary directory when the tests are done.
class RemoveTempDirectory : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(TempDirectory(), ignored);
  }
};
const bool kRegistered = (::testing::AddGlobalTestEnvironment(new RemoveTempDirectory), true);

}  // namespace

std::string TempPath(const std::string& name) {
  const std::filesystem::path dir = TempDirectory();
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

const std::string& ReluLlamaModel() {
  static const std::string path =
      Convert("relu-llama-260k.pi", "relu-llama-260k/model_q80.bin", "relu-llama-260k/tok1024.bin",
              "shifted_relu:0.25", "shifted_relu:1.0");
  return path;
}

const std::string& Stories260kModel() {
  static const std::string path = Convert("stories260K.pi", "stories260K/stories260K.bin",
                                          "stories260K/tok512.bin", "silu", "none");
  return path;
}

}  // namespace pinfer::testing_support
