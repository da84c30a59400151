#include "tests/runtime/test_models.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "format/pi_file.h"
#include "gtest/gtest.h"
#include "tools/convert/converter.h"
#include "tools/convert/llama2c_source.h"

namespace pinfer::test {
namespace fs = std::filesystem;

std::string SourcePath(const std::string& relative) {
  // $PINFER_SOURCE_DIR: the repository moved since the build (test binaries carried to another
  // machine, bench/hybrid/gpu_check.sh).
  const char* moved = std::getenv("PINFER_SOURCE_DIR");
  return (fs::path(moved != nullptr && *moved != '\0' ? moved : PINFER_SOURCE_DIR) / relative)
      .string();
}

namespace {

// Removed when the process exits.
class Scratch {
 public:
  Scratch() {
    // tmpfs when there is one: the converter fsyncs, which is slow on a busy disk.
    const char* test_tmpdir = std::getenv("TEST_TMPDIR");
    const fs::path root = test_tmpdir != nullptr         ? fs::path(test_tmpdir)
                          : fs::is_directory("/dev/shm") ? fs::path("/dev/shm")
                                                         : fs::path(::testing::TempDir());
    path_ = root / absl::StrCat("pinfer_runtime_", getpid());
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
  static Scratch scratch;  // destroyed, and the directory removed, at exit
  return scratch;
}

}  // namespace

std::string ScratchDir() { return GetScratch().path().string(); }

std::string ConvertedModel(BundledModel model, std::optional<DType> dtype) {
  static std::mutex mutex;
  static std::map<std::pair<int, int>, std::string> converted;
  std::lock_guard<std::mutex> lock(mutex);
  const std::pair<int, int> key{static_cast<int>(model), dtype ? static_cast<int>(*dtype) : -1};
  if (auto it = converted.find(key); it != converted.end()) return it->second;

  std::string checkpoint, name;
  Llama2cOptions options;
  if (model == BundledModel::kStories260K) {
    checkpoint = SourcePath("models/stories260K/stories260K.bin");
    options.tokenizer_path = SourcePath("models/stories260K/tok512.bin");
    name = "stories260K";
  } else {
    checkpoint = SourcePath("models/relu-llama-260k/model_q80.bin");
    options.tokenizer_path = SourcePath("models/relu-llama-260k/tok1024.bin");
    options.ffn_act = *Activation::Parse("shifted_relu:0.25");
    options.norm_act = *Activation::Parse("shifted_relu:1.0", /*for_norm=*/true);
    name = "relu-llama-260k";
  }
  const std::string path =
      (GetScratch().path() /
       absl::StrCat(name, "-", dtype ? std::string(DTypeName(*dtype)) : "native", ".pi"))
          .string();
  absl::StatusOr<SourceModel> source = ReadLlama2c(checkpoint, options);
  EXPECT_TRUE(source.ok()) << source.status();
  if (!source.ok()) return path;
  ConvertOptions convert;
  convert.dtype = dtype;
  convert.progress = false;
  absl::StatusOr<ConvertReport> report = ConvertModel(*source, path, convert);
  EXPECT_TRUE(report.ok()) << report.status();
  converted[key] = path;
  return path;
}

absl::Status RewriteModel(const std::string& from, const std::string& to,
                          const std::function<void(Metadata&)>& edit_metadata,
                          const std::function<void(std::vector<TensorSpec>&)>& edit_tensors) {
  absl::StatusOr<std::unique_ptr<PiFile>> file = PiFile::Open(from);
  if (!file.ok()) return file.status();
  Metadata metadata = (*file)->metadata();
  if (edit_metadata) edit_metadata(metadata);
  std::vector<TensorSpec> specs;
  for (const TensorInfo& t : (*file)->tensors()) specs.push_back({t.name, t.dtype, t.shape});
  if (edit_tensors) edit_tensors(specs);
  std::vector<TensorData> tensors;
  for (const TensorSpec& spec : specs) {
    TensorData data;
    data.spec = spec;
    absl::StatusOr<uint64_t> bytes = TensorBytes(spec.dtype, spec.shape);
    if (!bytes.ok()) return bytes.status();
    const TensorInfo* original = (*file)->Find(spec.name);
    if (original != nullptr && original->size == *bytes) {
      std::span<const uint8_t> source = (*file)->Data(*original);
      data.bytes.assign(source.begin(), source.end());
    } else {
      data.bytes.assign(*bytes, 0);
    }
    tensors.push_back(std::move(data));
  }
  return WritePiFile(to, ArtifactKind::kModel, std::move(metadata), tensors);
}

std::string ReadRepoFile(const std::string& relative) {
  std::ifstream in(SourcePath(relative), std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return std::move(text).str();
}

namespace {

std::string ShellQuote(const std::string& s) {
  std::string quoted = "'";
  for (char c : s) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return std::move(text).str();
}

}  // namespace

ProgramResult RunProgram(const std::string& program, const std::vector<std::string>& args,
                         const std::string& stdin_text) {
  static int counter = 0;
  const fs::path base = GetScratch().path() / absl::StrCat("run", counter++);
  {
    std::ofstream in(base.string() + ".in", std::ios::binary);
    in << stdin_text;
  }
  std::string command = ShellQuote(program);
  for (const std::string& arg : args) absl::StrAppend(&command, " ", ShellQuote(arg));
  absl::StrAppend(&command, " <", ShellQuote(base.string() + ".in"), " >",
                  ShellQuote(base.string() + ".out"), " 2>", ShellQuote(base.string() + ".err"));
  ProgramResult result;
  const int status = std::system(command.c_str());
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = ReadFile(base.string() + ".out");
  result.err = ReadFile(base.string() + ".err");
  return result;
}

const ModelWithPredictor& ReluModelWithPredictor() {
  static std::mutex mutex;
  static std::optional<ModelWithPredictor> made;
  std::lock_guard<std::mutex> lock(mutex);
  if (made) return *made;
  const fs::path dir = GetScratch().path() / "relu_with_predictor";
  fs::create_directories(dir);
  made = ModelWithPredictor{(dir / "relu.pi").string(), (dir / "relu.profile.pi").string(),
                            (dir / "relu.predictor.pi").string()};
  std::error_code error;
  fs::copy_file(ConvertedModel(BundledModel::kReluLlama260K), made->model,
                fs::copy_options::overwrite_existing, error);
  EXPECT_FALSE(error) << made->model << ": " << error.message();
  const std::string bin = fs::canonical("/proc/self/exe").parent_path().string();
  const ProgramResult r =
      RunProgram("env", {"PINFER_BIN=" + bin, "PROFILE_TOKENS=8000", "THREADS=1", "bash",
                         SourcePath("scripts/make_predictor.sh"), made->model,
                         SourcePath("tests/data/text/tinystories_valid_head.txt"), "--rank", "64",
                         "--epochs", "6"});
  EXPECT_EQ(r.exit_code, 0) << "scripts/make_predictor.sh failed: " << r.err;
  return *made;
}

}  // namespace pinfer::test
