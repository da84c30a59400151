// With LLAMA_CPP_DIR set (a llama.cpp checkout with its models/ and build/bin/llama-tokenize; not
// in CI): the byte-level tokenizer on llama.cpp's own vocabulary files. Each
// models/ggml-vocab-<name>.gguf.inp/.out pair holds cases and the ids llama.cpp's
// test-tokenizer-0 expects (add_special=false, parse_special=false); then llama-tokenize is run
// live on a corpus excerpt with its default flags and must give our ids.
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "runtime/text/tokenizer.h"
#include "tests/convert/test_util.h"
#include "tests/text/bpe_fixture.h"
#include "tools/convert/gguf_source.h"

namespace pinfer {
namespace {

namespace fs = std::filesystem;

std::string ReadText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return std::move(text).str();
}

std::vector<int32_t> ParseIds(absl::string_view line) {
  std::vector<int32_t> ids;
  for (absl::string_view field : absl::StrSplit(line, absl::ByAnyChar(" ,[]"), absl::SkipEmpty())) {
    int32_t id;
    if (absl::SimpleAtoi(field, &id)) ids.push_back(id);
  }
  return ids;
}

class LlamaCppVocabTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const char* dir = std::getenv("LLAMA_CPP_DIR");
    if (dir == nullptr || *dir == '\0') GTEST_SKIP() << "LLAMA_CPP_DIR is not set";
    root_ = dir;
    gguf_ = root_ / "models" / ("ggml-vocab-" + GetParam() + ".gguf");
    if (!fs::exists(gguf_)) GTEST_SKIP() << gguf_ << " is missing";
    std::vector<std::string> notes;
    absl::StatusOr<Vocabulary> v = ReadGgufVocabulary(gguf_.string(), notes);
    ASSERT_TRUE(v.ok()) << v.status();
    absl::StatusOr<Tokenizer> t = Tokenizer::Create(*v);
    ASSERT_TRUE(t.ok()) << t.status();
    tokenizer_.emplace(*std::move(t));
  }
  fs::path root_, gguf_;
  std::optional<Tokenizer> tokenizer_;
};

TEST_P(LlamaCppVocabTest, MatchesItsTestCases) {
  std::vector<std::string> cases =
      absl::StrSplit(ReadText(gguf_.string() + ".inp"), "\n__ggml_vocab_test__\n");
  const std::vector<std::string> expected = absl::StrSplit(ReadText(gguf_.string() + ".out"), '\n');
  ASSERT_GE(cases.size(), 40u);
  if (cases.back().empty()) cases.pop_back();
  ASSERT_LE(cases.size(), expected.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(tokenizer_->Encode(cases[i], false, false), ParseIds(expected[i]))
        << GetParam() << " case " << i;
  }
}

TEST_P(LlamaCppVocabTest, MatchesLlamaTokenizeLive) {
  const fs::path tool = root_ / "build" / "bin" / "llama-tokenize";
  if (!fs::exists(tool)) GTEST_SKIP() << tool << " is missing";
  const std::string dir = testing::ScratchDir("llama_cpp_live_" + GetParam());
  const std::string excerpt = testing::BpeGoldenExcerpt("wikitext2_test.tokens");
  testing::WriteFileText(dir + "/excerpt.txt", excerpt);
  const std::string command = tool.string() + " -m " + gguf_.string() + " -f " + dir +
                              "/excerpt.txt --ids --no-escape --log-disable 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) out.append(buffer.data(), n);
  ASSERT_EQ(pclose(pipe), 0) << command;
  const size_t list = out.rfind('[');
  ASSERT_NE(list, std::string::npos) << out;
  const std::vector<int32_t> theirs = ParseIds(absl::string_view(out).substr(list));
  ASSERT_GT(theirs.size(), 1000u);
  EXPECT_EQ(tokenizer_->Encode(excerpt, true, true), theirs);
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, LlamaCppVocabTest,
                         ::testing::Values("gpt-2", "falcon", "mpt", "starcoder", "refact"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace pinfer
