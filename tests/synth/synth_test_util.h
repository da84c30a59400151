// Helpers shared by the pi-synth tests: a scratch directory and a small model written into it.
#pragma once

#include <filesystem>
#include <string>

#include "bench/synth/synth_model.h"
#include "format/mapped_file.h"
#include "tools/convert/gguf_file.h"

namespace pinfer::synth::testing {

// A fresh directory under the test temp dir, removed with its contents on destruction.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& name);
  ~ScratchDir();
  std::string Path(const std::string& file) const { return (dir_ / file).string(); }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

// A GGUF file parsed by pi-convert's reader, with the mapping its views point into.
struct OpenedGguf {
  std::unique_ptr<MappedFile> mapping;
  GgufFile file;
};
absl::StatusOr<OpenedGguf> OpenGguf(const std::string& path);

// Options for a small custom shape (seconds to write and to run) of architecture `arch` (empty:
// llama), progress off.
SynthOptions SmallModelOptions(const std::string& shape_text, DType dtype,
                               const std::string& output, const std::string& gguf = "",
                               const std::string& arch = "");

}  // namespace pinfer::synth::testing
