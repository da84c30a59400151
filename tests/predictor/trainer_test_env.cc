#include "tests/predictor/trainer_test_env.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace pinfer::trainer_test {
namespace fs = std::filesystem;

std::string SourcePath(const std::string& relative) {
  return (fs::path(PINFER_SOURCE_DIR) / relative).string();
}

namespace {

class Scratch {
 public:
  Scratch() {
    const char* test_tmpdir = std::getenv("TEST_TMPDIR");
    const fs::path root = test_tmpdir != nullptr         ? fs::path(test_tmpdir)
                          : fs::is_directory("/dev/shm") ? fs::path("/dev/shm")
                                                         : fs::path(::testing::TempDir());
    path_ = root / absl::StrCat("pinfer_predictor_", getpid());
    fs::create_directories(path_);
  }
  ~Scratch() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

Scratch& GetScratch() {
  static Scratch scratch;
  return scratch;
}

std::string ShellQuote(const std::string& s) {
  std::string quoted = "'";
  for (char c : s) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::string Convert(const std::string& name, const std::vector<std::string>& args) {
  const std::string path = (GetScratch().path() / (name + ".pi")).string();
  if (fs::exists(path)) return path;
  std::vector<std::string> all = args;
  all.insert(all.end(), {"-q", "-o", path});
  std::string err;
  EXPECT_EQ(Run(PI_CONVERT_PATH, all, &err), 0) << err;
  return path;
}

}  // namespace

std::string ScratchDir() { return GetScratch().path().string(); }

int Run(const std::string& program, const std::vector<std::string>& args, std::string* err) {
  static int counter = 0;
  const std::string err_path =
      (GetScratch().path() / absl::StrCat("run", counter++, ".err")).string();
  std::string command = ShellQuote(program);
  for (const std::string& arg : args) absl::StrAppend(&command, " ", ShellQuote(arg));
  absl::StrAppend(&command, " </dev/null >/dev/null 2>", ShellQuote(err_path));
  const int status = std::system(command.c_str());
  if (err != nullptr) {
    std::ifstream in(err_path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    *err = std::move(text).str();
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ReluModel() {
  return Convert("relu-llama-260k",
                 {SourcePath("models/relu-llama-260k/model_q80.bin"), "--tokenizer",
                  SourcePath("models/relu-llama-260k/tok1024.bin"), "--ffn-act",
                  "shifted_relu:0.25", "--norm-act", "shifted_relu:1.0"});
}

std::string StoriesModel() {
  return Convert("stories260K", {SourcePath("models/stories260K/stories260K.bin"), "--tokenizer",
                                 SourcePath("models/stories260K/tok512.bin")});
}

}  // namespace pinfer::trainer_test
