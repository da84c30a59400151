#include "tests/synth/synth_test_util.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace pinfer::synth::testing {

ScratchDir::ScratchDir(const std::string& name)
    : dir_(std::filesystem::path(::testing::TempDir()) /
           absl::StrCat("pi_synth_", name, "_", getpid())) {
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(dir_);
}

ScratchDir::~ScratchDir() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

absl::StatusOr<OpenedGguf> OpenGguf(const std::string& path) {
  absl::StatusOr<std::unique_ptr<MappedFile>> mapping = MappedFile::Open(path);
  if (!mapping.ok()) return mapping.status();
  absl::StatusOr<GgufFile> file = GgufFile::Parse((*mapping)->bytes(), path);
  if (!file.ok()) return file.status();
  return OpenedGguf{*std::move(mapping), *std::move(file)};
}

SynthOptions SmallModelOptions(const std::string& shape_text, DType dtype,
                               const std::string& output, const std::string& gguf,
                               const std::string& arch) {
  SynthOptions options;
  absl::StatusOr<ShapeSpec> shape = ParseShape(shape_text, arch);
  EXPECT_TRUE(shape.ok()) << shape.status();
  options.shape = *shape;
  options.dtype = dtype;
  options.seed = 1234;
  options.output_path = output;
  options.gguf_path = gguf;
  options.progress = false;
  options.command_line = "pi-synth (test)";
  return options;
}

}  // namespace pinfer::synth::testing
