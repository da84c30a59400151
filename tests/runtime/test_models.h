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

// relu-llama-260k with its activation predictor, for tests of the sparse runtime: the model and
// the files scripts/make_predictor.sh writes beside it (profile, samples, predictor), made once
// per process in a directory of ScratchDir() by running that script over TinyStories text with
// PROFILE_TOKENS=8000 and `--rank 64 --epochs 6` (about 10 s on one core). It runs the
// pi-profile and pi-train-predictor programs from the test binary's own directory (build/bin), so
// a test target using it needs `add_dependencies(<target> pi-profile pi-train-predictor)`.
// Failures are reported as test failures (the paths are returned anyway).
struct ModelWithPredictor {
  std::string model;      // relu.pi
  std::string profile;    // relu.profile.pi
  std::string predictor;  // relu.predictor.pi
};
const ModelWithPredictor& ReluModelWithPredictor();

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
