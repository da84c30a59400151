// pi-inspect on a real converted model: the text and JSON reports, and --verify's exit status.
#include <filesystem>

#include "format/pi_file.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/convert/test_util.h"

namespace pinfer::testing {
namespace {

std::string Converted() {
  static const std::string path = [] {
    const std::string dir =
        (std::filesystem::path(::testing::TempDir()) / "pinfer_convert_test_inspect").string();
    std::filesystem::create_directories(dir);
    const std::string p = dir + "/stories.pi";
    const ToolResult r =
        RunTool("pi-convert", {RepoPath("models/stories260K/stories260K.bin"), "--tokenizer",
                               RepoPath("models/stories260K/tok512.bin"), "--dtype", "q4_0",
                               "--pure", "-o", p, "-q"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return p;
  }();
  return path;
}

// True when one line of `text` contains all `parts`.
bool HasLineWith(const std::string& text, std::initializer_list<const char*> parts) {
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = std::min(text.find('\n', start), text.size());
    const std::string line = text.substr(start, end - start);
    bool all = true;
    for (const char* p : parts) all &= line.find(p) != std::string::npos;
    if (all) return true;
    start = end + 1;
  }
  return false;
}

TEST(PiInspect, TextReport) {
  const ToolResult r = RunTool("pi-inspect", {"--verify", "-q", Converted()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  for (const char* expected :
       {"format    .pi 1.0, model artifact", "layout    metadata ", "content digest ",
        "metadata (36 entries)", "llama.n_ff                  int64      172",
        "\"<unk>\", \"<s>\", \"</s>\", \"<0x00>\"", "... (512 items)]", "tensors (47)",
        "verify    all 47 tensor checksums match: the file is sound"}) {
    EXPECT_NE(r.out.find(expected), std::string::npos) << expected << "\n" << r.out;
  }
  EXPECT_TRUE(HasLineWith(r.out, {"  blk.4.ffn_down_t ", " q4_0 ", " [172, 64] "}));
  EXPECT_TRUE(HasLineWith(r.out, {"  token_embd ", " q4_0 ", " [512, 64] ", " 18432 "}));
  EXPECT_TRUE(HasLineWith(r.out, {"  output_norm ", " f32 ", " [64] ", " 256 "}));
  // Without --verify there is no verdict.
  const ToolResult plain = RunTool("pi-inspect", {Converted()});
  EXPECT_EQ(plain.exit_code, 0);
  EXPECT_EQ(plain.out.find("verify"), std::string::npos);
}

TEST(PiInspect, JsonReport) {
  const ToolResult r = RunTool("pi-inspect", {"--json", "--verify", Converted()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  auto file = PiFile::Open(Converted());
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(j["version"], "1.0");
  EXPECT_EQ(j["kind"], "model");
  EXPECT_EQ(j["file_size"], (*file)->file_size());
  EXPECT_EQ(j["content_digest"], (*file)->ContentDigestHex());
  EXPECT_EQ(j["header"]["tensor_count"], 47);
  EXPECT_EQ(j["metadata"]["llama.dim"]["type"], "int64");
  EXPECT_EQ(j["metadata"]["llama.dim"]["value"], 64);
  EXPECT_EQ(j["metadata"]["tokenizer.tokens"]["value"]["count"], 512);
  EXPECT_EQ(j["metadata"]["tokenizer.tokens"]["value"]["head"].size(), 8u);
  EXPECT_EQ(j["metadata"]["llama.ffn_act"]["value"], "silu");
  ASSERT_EQ(j["tensors"].size(), 47u);
  EXPECT_EQ(j["tensors"][0]["name"], "token_embd");
  EXPECT_EQ(j["tensors"][0]["dtype"], "q4_0");
  EXPECT_EQ(j["tensors"][0]["shape"], nlohmann::json::array({512, 64}));
  EXPECT_EQ(j["tensors"][0]["size"], 512 * 2 * 18);
  EXPECT_EQ(j["verify"]["sound"], true);
  EXPECT_EQ(j["verify"]["checked"], 47);
}

TEST(PiInspect, HelpHasAnExampleAndMissingFileIsOneLine) {
  const ToolResult help = RunTool("pi-inspect", {"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("pi-inspect --verify stories260K.pi"), std::string::npos) << help.out;
  const ToolResult convert_help = RunTool("pi-convert", {"--help"});
  EXPECT_NE(convert_help.out.find("Examples:"), std::string::npos);
  const ToolResult missing = RunTool("pi-inspect", {"/nonexistent/model.pi"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(missing.err.starts_with("pi-inspect: error: /nonexistent/model.pi")) << missing.err;
  EXPECT_EQ(missing.err.find('\n'), missing.err.size() - 1);
}

}  // namespace
}  // namespace pinfer::testing
