// Byte-level vocabularies in and out of the tools: bad GGUF and tokenizer.json input (one line
// naming the file and the field), pi-tokenize's formats on every kind of source, and a byte-level
// vocabulary carried through pi-convert into model.pi and used by pi-run.
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "runtime/text/tokenizer.h"
#include "tests/convert/test_util.h"
#include "tests/text/bpe_fixture.h"
#include "tools/convert/gguf_source.h"
#include "tools/convert/hf_tokenizer.h"

namespace pinfer {
namespace {

using testing::BpeFixture;
using testing::RunTool;
using testing::ScratchDir;
using testing::WriteFileBytes;
using testing::WriteFileText;

BpeFixture SmallFixture(const std::string& pre = "gpt-2") {
  absl::StatusOr<BpeFixture> f =
      testing::TrainBpeFixture(pre, "the then there these the them they the", 6);
  EXPECT_TRUE(f.ok()) << f.status();
  return *std::move(f);
}

std::string ErrorOf(const absl::StatusOr<Vocabulary>& v) {
  EXPECT_FALSE(v.ok());
  return v.ok() ? "" : std::string(v.status().message());
}

std::string GgufError(const BpeFixture& f, const std::string& name) {
  const std::string path = ScratchDir(name) + "/vocab.gguf";
  WriteFileBytes(path, testing::BpeFixtureGguf(f));
  std::vector<std::string> notes;
  const std::string error = ErrorOf(ReadGgufVocabulary(path, notes));
  EXPECT_NE(error.find(path), std::string::npos) << error;
  return error;
}

std::string JsonError(const nlohmann::json& json, const std::string& name) {
  const std::string path = ScratchDir(name) + "/tokenizer.json";
  WriteFileText(path, json.dump());
  const std::string error = ErrorOf(ReadTokenizerJson(path));
  EXPECT_NE(error.find(path), std::string::npos) << error;
  return error;
}

TEST(BpeBadInputTest, GgufWithUnknownPreTokenizer) {
  BpeFixture f = SmallFixture();
  f.pre = "no-such-family";
  const std::string error = GgufError(f, "bpe_unknown_pre");
  EXPECT_NE(error.find("tokenizer.ggml.pre 'no-such-family'"), std::string::npos) << error;
}

TEST(BpeBadInputTest, GgufMergeOfMissingTokens) {
  BpeFixture f = SmallFixture();
  f.merges.push_back("zz q");
  std::string error = GgufError(f, "bpe_missing_merge");
  EXPECT_NE(error.find("tokenizer.ggml.merges"), std::string::npos) << error;
  EXPECT_NE(error.find("'zz'"), std::string::npos) << error;
  f.merges.back() = "th";  // no space: not two tokens
  error = GgufError(f, "bpe_unsplit_merge");
  EXPECT_NE(error.find(absl::StrCat("tokenizer.ggml.merges: merge ", f.merges.size() - 1, " 'th'")),
            std::string::npos)
      << error;
  f.merges.back() = "t q";  // both tokens, but "tq" is none
  error = GgufError(f, "bpe_merge_makes_nothing");
  EXPECT_NE(error.find("makes 'tq'"), std::string::npos) << error;
}

TEST(BpeBadInputTest, GgufWithoutMerges) {
  BpeFixture f = SmallFixture();
  f.merges.clear();
  const std::string error = GgufError(f, "bpe_no_merges");
  EXPECT_NE(error.find("no merges"), std::string::npos) << error;
}

TEST(BpeBadInputTest, TokenizerJsonOfAnUnsupportedModelType) {
  nlohmann::json json = testing::BpeFixtureTokenizerJson(SmallFixture());
  json["model"]["type"] = "WordPiece";
  const std::string error = JsonError(json, "bpe_wordpiece");
  EXPECT_NE(error.find("'WordPiece'"), std::string::npos) << error;
}

TEST(BpeBadInputTest, TokenizerJsonWithAnUnknownPreTokenizer) {
  nlohmann::json json = testing::BpeFixtureTokenizerJson(SmallFixture());
  json["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers", {{{"type", "Whitespace"}}, {{"type", "ByteLevel"}, {"use_regex", true}}}}};
  std::string error = JsonError(json, "bpe_json_unknown_pre");
  EXPECT_NE(error.find("pre_tokenizer [Whitespace | ByteLevel+regex]"), std::string::npos) << error;
  json["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}};
  error = JsonError(json, "bpe_json_prefix_space");
  EXPECT_NE(error.find("add_prefix_space"), std::string::npos) << error;
}

TEST(BpeBadInputTest, TokenizerJsonMergeOfMissingTokens) {
  const BpeFixture f = SmallFixture();
  nlohmann::json json = testing::BpeFixtureTokenizerJson(f);
  json["model"]["merges"].push_back("zz q");
  const size_t last = f.merges.size();
  std::string error = JsonError(json, "bpe_json_missing_merge");
  EXPECT_NE(error.find(absl::StrCat("model.merges: merge ", last, " 'zz q' refers to 'zz'")),
            std::string::npos)
      << error;
  json["model"]["merges"].back() = 7;
  error = JsonError(json, "bpe_json_bad_merge");
  EXPECT_NE(error.find(absl::StrCat("model.merges: merge ", last, " is malformed")),
            std::string::npos)
      << error;
}

// The same fixture read from tokenizer.json whichever way tokenizers writes merges.
TEST(BpeBadInputTest, TokenizerJsonMergesAsPairs) {
  const BpeFixture f = SmallFixture();
  nlohmann::json json = testing::BpeFixtureTokenizerJson(f);
  nlohmann::json pairs = nlohmann::json::array();
  for (const std::string& merge : f.merges) {
    const size_t space = merge.find(' ');
    pairs.push_back({merge.substr(0, space), merge.substr(space + 1)});
  }
  json["model"]["merges"] = pairs;
  const std::string path = ScratchDir("bpe_json_pairs") + "/tokenizer.json";
  WriteFileText(path, json.dump());
  absl::StatusOr<Vocabulary> v = ReadTokenizerJson(path);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->merges, f.merges);
}

void ExpectOneLineError(const testing::ToolResult& r, const std::string& what) {
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  EXPECT_EQ(r.err.rfind("pi-tokenize: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
}

TEST(PiTokenizeTest, FormatsOfLlamaTokenize) {
  const std::string gguf = testing::RepoPath("tests/data/bpe/gpt-2/vocab.gguf");
  const testing::ToolResult ids = RunTool("pi-tokenize", {"-m", gguf, "-p", "the cat\n", "--ids"});
  ASSERT_EQ(ids.exit_code, 0) << ids.err;
  absl::StatusOr<Vocabulary> v =
      ReadTokenizerJson(testing::RepoPath("tests/data/bpe/gpt-2/tokenizer.json"));
  ASSERT_TRUE(v.ok());
  absl::StatusOr<Tokenizer> t = Tokenizer::Create(*v);
  ASSERT_TRUE(t.ok());
  const std::vector<int32_t> expected = t->Encode("the cat\n", true, true);
  ASSERT_GE(expected.size(), 2u);
  EXPECT_EQ(ids.out, absl::StrCat("[", absl::StrJoin(expected, ", "), "]\n"));
  const testing::ToolResult pieces = RunTool("pi-tokenize", {"-m", gguf, "-p", "the cat\n"});
  ASSERT_EQ(pieces.exit_code, 0) << pieces.err;
  std::string lines;
  for (int32_t id : expected) {
    char prefix[16];
    std::snprintf(prefix, sizeof(prefix), "%6d -> '", id);
    lines += absl::StrCat(prefix, t->TokenToPiece(id, true), "'\n");
  }
  EXPECT_EQ(pieces.out, lines);
  EXPECT_NE(pieces.out.find(" -> ' cat'\n"), std::string::npos) << pieces.out;
  EXPECT_NE(pieces.out.find(" -> '\n'\n"), std::string::npos) << pieces.out;
}

TEST(PiTokenizeTest, BosAndSpecialFlags) {
  const std::string json = testing::RepoPath("tests/data/bpe/llama-bpe/tokenizer.json");
  const std::string dir = ScratchDir("pi_tokenize_flags");
  WriteFileText(dir + "/prompt.txt", "<|eot_id|>");
  const testing::ToolResult with =
      RunTool("pi-tokenize", {"-m", json, "-f", dir + "/prompt.txt", "--ids"});
  const testing::ToolResult without =
      RunTool("pi-tokenize",
              {"-m", json, "-f", dir + "/prompt.txt", "--ids", "--no-bos", "--no-parse-special"});
  ASSERT_EQ(with.exit_code, 0) << with.err;
  ASSERT_EQ(without.exit_code, 0) << without.err;
  absl::StatusOr<Vocabulary> v = ReadTokenizerJson(json);
  ASSERT_TRUE(v.ok()) << v.status();
  absl::StatusOr<Tokenizer> t = Tokenizer::Create(*v);
  ASSERT_TRUE(t.ok()) << t.status();
  const int32_t bos = t->PieceToToken("<|begin_of_text|>");
  const int32_t eot = t->PieceToToken("<|eot_id|>");
  ASSERT_EQ(bos, t->bos());
  EXPECT_EQ(with.out, absl::StrCat("[", bos, ", ", eot, "]\n"));
  EXPECT_EQ(without.out.find(absl::StrCat(bos)), std::string::npos) << without.out;
  EXPECT_EQ(without.out.find(absl::StrCat(eot)), std::string::npos) << without.out;
}

TEST(PiTokenizeTest, BadInputIsOneLine) {
  const std::string dir = ScratchDir("pi_tokenize_bad");
  WriteFileText(dir + "/not_a_model.bin", "hello, I am not a model");
  ExpectOneLineError(RunTool("pi-tokenize", {"-m", dir + "/not_a_model.bin", "-p", "x"}),
                     dir + "/not_a_model.bin");
  ExpectOneLineError(RunTool("pi-tokenize", {"-m", dir + "/missing.gguf", "-p", "x"}),
                     dir + "/missing.gguf");
  ExpectOneLineError(
      RunTool("pi-tokenize", {"-m", testing::RepoPath("tests/data/bpe/gpt-2/vocab.gguf")}),
      "-p or -f");
  BpeFixture f = SmallFixture();
  f.pre = "no-such-family";
  WriteFileBytes(dir + "/bad_pre.gguf", testing::BpeFixtureGguf(f));
  ExpectOneLineError(RunTool("pi-tokenize", {"-m", dir + "/bad_pre.gguf", "-p", "x"}),
                     "tokenizer.ggml.pre 'no-such-family'");
}

// A llama model whose GGUF has a byte-level vocabulary: pi-convert carries it into model.pi,
// pi-tokenize reads it from there with the golden ids, pi-run generates with it.
TEST(PiTokenizeTest, ByteLevelVocabularyThroughModelPi) {
  std::vector<std::string> notes;
  absl::StatusOr<Vocabulary> v =
      ReadGgufVocabulary(testing::RepoPath("tests/data/bpe/qwen2/vocab.gguf"), notes);
  ASSERT_TRUE(v.ok()) << v.status();
  BpeFixture f;
  f.pre = v->pre_tokenizer;
  f.pieces = v->pieces;
  f.merges = v->merges;
  for (size_t i = 0; i < v->size(); ++i) {
    if (v->types[i] != static_cast<int32_t>(TokenType::kNormal)) {
      f.specials.push_back(
          {v->pieces[i], v->types[i] == static_cast<int32_t>(TokenType::kControl)});
    }
  }
  f.bos_id = v->bos_id;
  f.eos_id = v->eos_id;
  const std::string dir = ScratchDir("bpe_model_pi");
  WriteFileBytes(dir + "/model.gguf", testing::BpeFixtureLlamaGguf(f));
  const testing::ToolResult convert =
      RunTool("pi-convert", {dir + "/model.gguf", "-o", dir + "/model.pi", "-q"});
  ASSERT_EQ(convert.exit_code, 0) << convert.err;
  const std::string excerpt = testing::BpeGoldenExcerpt("wikitext2_test.tokens");
  WriteFileText(dir + "/excerpt.txt", excerpt);
  const testing::ToolResult ids =
      RunTool("pi-tokenize", {"-m", dir + "/model.pi", "-f", dir + "/excerpt.txt", "--ids"});
  ASSERT_EQ(ids.exit_code, 0) << ids.err;
  std::string golden = [] {
    const std::vector<uint8_t> bytes =
        testing::ReadFileBytes(testing::RepoPath("tests/data/bpe/qwen2/wikitext2_test.tokens.ids"));
    return std::string(bytes.begin(), bytes.end());
  }();
  golden.pop_back();  // the newline
  EXPECT_EQ(ids.out, absl::StrCat("[", absl::StrReplaceAll(golden, {{" ", ", "}}), "]\n"));
  const testing::ToolResult run = RunTool(
      "pi-run", {"-m", dir + "/model.pi", "-p", "Once upon a time", "-n", "4", "--temp", "0"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_FALSE(run.out.empty());
}

}  // namespace
}  // namespace pinfer
