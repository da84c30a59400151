// Shared helpers of the conversion tests: repository paths, scratch directories, file I/O, and
// running the real pi-convert / pi-inspect binaries.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "format/pi_file.h"

namespace pinfer::testing {

// A path inside the repository (models/..., tests/data/...).
std::string RepoPath(const std::string& relative);
// A fresh, empty directory for one test.
std::string ScratchDir(const std::string& name);

std::vector<uint8_t> ReadFileBytes(const std::string& path);
void WriteFileBytes(const std::string& path, const std::vector<uint8_t>& bytes);
void WriteFileText(const std::string& path, const std::string& text);
bool FileExists(const std::string& path);

struct ToolResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
// Runs build/bin/<tool> with `args` (each passed as one argument), killed after 60 s and limited
// to 8 GiB of address space (exit code 137 or an abort then).
ToolResult RunTool(const std::string& tool, const std::vector<std::string>& args);

// The f32 values of a tensor of a .pi file (any floating or quantized dtype).
std::vector<float> DecodeTensor(const PiFile& file, const std::string& name);

// A row-major [rows, cols] matrix transposed (HF's down_proj to the neuron-major ffn_down_t).
std::vector<float> Transpose(const std::vector<float>& m, uint64_t rows, uint64_t cols);

}  // namespace pinfer::testing
