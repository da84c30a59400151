#include "tests/convert/test_util.h"

#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "format/quant.h"
#include "gtest/gtest.h"

namespace pinfer::testing {

namespace fs = std::filesystem;

std::string RepoPath(const std::string& relative) {
  return (fs::path(PINFER_SOURCE_DIR) / relative).string();
}

std::string ScratchDir(const std::string& name) {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string test = info ? std::string(info->test_suite_name()) + "." + info->name() : "global";
  for (char& c : test) {
    if (c == '/') c = '_';
  }
  const fs::path dir = fs::path(::testing::TempDir()) / "pinfer_convert_test" / test / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

std::vector<uint8_t> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void WriteFileBytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

void WriteFileText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

bool FileExists(const std::string& path) { return fs::exists(path); }

namespace {

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q += c;
    }
  }
  return q + "'";
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

ToolResult RunTool(const std::string& tool, const std::vector<std::string>& args) {
  const std::string dir = ScratchDir("tool_" + tool + "_" + std::to_string(std::rand()));
  const std::string out_path = dir + "/stdout", err_path = dir + "/stderr";
  // A tool that hangs (a FIFO opened for reading) or allocates without bound (a header count
  // trusted before it is checked) fails its test, instead of stalling the suite or bringing the
  // machine to the OOM killer: 60 s and 8 GiB of address space at most.
  std::string command = absl::StrCat("ulimit -v 8388608; exec timeout -s KILL 60 ",
                                     Quote((fs::path(PINFER_BINARY_DIR) / tool).string()));
  // (StrAppend, not "literal" + std::string: GCC 12 warns falsely about the latter.)
  for (const std::string& a : args) absl::StrAppend(&command, " ", Quote(a));
  absl::StrAppend(&command, " >", Quote(out_path), " 2>", Quote(err_path));
  const int status = std::system(command.c_str());
  ToolResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = Slurp(out_path);
  result.err = Slurp(err_path);
  fs::remove_all(dir);
  return result;
}

std::vector<float> DecodeTensor(const PiFile& file, const std::string& name) {
  const TensorInfo* t = file.Find(name);
  if (t == nullptr) {
    ADD_FAILURE() << "tensor " << name << " missing in " << file.path();
    return {};
  }
  std::vector<float> values(t->elements());
  // Row by row: q4_0x16 groups its blocks within each row.
  const uint64_t cols = t->shape.back(), rows = values.size() / std::max<uint64_t>(cols, 1);
  const uint64_t row_bytes = rows == 0 ? 0 : t->size / rows;
  for (uint64_t r = 0; r < rows; ++r) {
    absl::Status s =
        DecodeRow(file.Data(*t).data() + r * row_bytes, cols, t->dtype, values.data() + r * cols);
    EXPECT_TRUE(s.ok()) << s;
  }
  return values;
}

std::vector<float> Transpose(const std::vector<float>& m, uint64_t rows, uint64_t cols) {
  std::vector<float> t(m.size());
  for (uint64_t r = 0; r < rows; ++r) {
    for (uint64_t c = 0; c < cols; ++c) t[c * rows + r] = m[r * cols + c];
  }
  return t;
}

}  // namespace pinfer::testing
