// What the LibTorch test binary (predictor_train_test) needs of the repository and the tools.
// It cannot use tests/runtime/test_models.h: that converts models in-process with pinfer_convert,
// which links SentencePiece, and SentencePiece's embedded protobuf clashes with the libprotobuf
// LibTorch loads (the process dies in static initialization). So models are converted here by
// running the pi-convert program.
#pragma once

#include <string>
#include <vector>

namespace pinfer::trainer_test {

std::string SourcePath(const std::string& relative);  // a path inside the repository
std::string ScratchDir();  // this process's temporary directory, removed at exit

// Runs a program through the shell; returns its exit status (-1 when it did not exit) and its
// stderr in `err` when given.
int Run(const std::string& program, const std::vector<std::string>& args,
        std::string* err = nullptr);

// relu-llama-260k and stories260K converted by pi-convert into ScratchDir(), once per process.
std::string ReluModel();
std::string StoriesModel();

}  // namespace pinfer::trainer_test
