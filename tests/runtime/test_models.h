// The bundled real models (models/), converted for tests with tools/convert's library, once per
// test process, into a private temporary directory (removed at exit).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "format/dtype.h"
#include "format/metadata.h"
#include "format/pi_writer.h"

namespace pinfer::test {

enum class BundledModel {
  kStories260K,    // models/stories260K/stories260K.bin + tok512.bin (SiLU)
  kReluLlama260K,  // models/relu-llama-260k/model_q80.bin + tok1024.bin (shifted ReLU, norm ReLU)
};

std::string SourcePath(const std::string& relative);  // a path inside the repository
std::string ScratchDir();                             // this process's temporary directory

// The path of `model` converted to `dtype` (unset: the source's own dtypes).
std::string ConvertedModel(BundledModel model, std::optional<DType> dtype = std::nullopt);

// Writes a copy of the model at `from` to `to`, after letting the callers edit its metadata and its
// tensor list (a tensor whose spec changed size is filled with zero bytes; a new one too).
absl::Status RewriteModel(const std::string& from, const std::string& to,
                          const std::function<void(Metadata&)>& edit_metadata,
                          const std::function<void(std::vector<TensorSpec>&)>& edit_tensors = {});

// Reads a text file of the repository.
std::string ReadRepoFile(const std::string& relative);

// Runs a program through the shell, with `stdin_text` as its input.
struct ProgramResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
ProgramResult RunProgram(const std::string& program, const std::vector<std::string>& args,
                         const std::string& stdin_text = "");

}  // namespace pinfer::test
