// The SPM tokenizer against llama.cpp's, on the 32000-token Llama 2 vocabulary and on the 512-token
// stories260K one. Expected ids come from llama.cpp's llama_tokenize (vocab-only loads of
// ggml-vocab-llama-spm.gguf and stories260K.gguf, add_special=true, parse_special=false).
#include "runtime/text/tokenizer.h"

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tools/convert/llama2c_tokenizer.h"

namespace pinfer {
namespace {

std::string RepoPath(const std::string& relative) {
  return std::string(PINFER_SOURCE_DIR) + "/" + relative;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return std::move(text).str();
}

const Tokenizer& Llama2() {
  static const Tokenizer* tokenizer = [] {
    absl::StatusOr<Vocabulary> v =
        ReadLlama2cTokenizer(RepoPath("tests/data/tokenizers/llama2_tokenizer.bin"), 32000);
    EXPECT_TRUE(v.ok()) << v.status();
    absl::StatusOr<Tokenizer> t = Tokenizer::Create(*v);
    EXPECT_TRUE(t.ok()) << t.status();
    return new Tokenizer(*std::move(t));
  }();
  return *tokenizer;
}

const Tokenizer& Stories() {
  static const Tokenizer* tokenizer = [] {
    absl::StatusOr<Vocabulary> v =
        ReadLlama2cTokenizer(RepoPath("models/stories260K/tok512.bin"), 512);
    EXPECT_TRUE(v.ok()) << v.status();
    absl::StatusOr<Tokenizer> t = Tokenizer::Create(*v);
    EXPECT_TRUE(t.ok()) << t.status();
    return new Tokenizer(*std::move(t));
  }();
  return *tokenizer;
}

struct Case {
  std::string text;
  std::vector<int32_t> llama2;
  std::vector<int32_t> stories;
};

const std::vector<Case>& Cases() {
  static const std::vector<Case> cases = {
      {"Hello world", {1, 15043, 3186}, {1, 346, 306, 414, 263, 304, 341}},
      {"", {1}, {1}},
      {" ", {1, 259}, {1, 410, 410}},
      {"  leading  and trailing  ",
       {1, 259, 8236, 29871, 322, 25053, 259},
       {1, 410, 410, 278, 411, 380, 299, 410, 269, 259, 420, 412, 290, 299, 410, 410}},
      {"\n\nnewlines\n",
       {1, 29871, 13, 13, 1482, 9012, 13},
       {1, 410, 13, 13, 416, 411, 424, 421, 271, 406, 13}},
      // Characters outside the vocabulary fall back to their UTF-8 bytes.
      {"caf\xc3\xa9 na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\xa6\x99",
       {1, 274, 28059, 1055, 30085, 345, 29871, 30325, 30346, 30968, 29871, 243, 162, 169, 156},
       {1,   280, 412, 431, 485, 297, 412, 198, 178, 360, 410, 233, 154,
        168, 233, 159, 175, 235, 173, 161, 410, 243, 162, 169, 156}},
      // Invalid UTF-8 too.
      {"\xff\xfeinvalid \xc3",
       {1, 29871, 258, 257, 108, 113, 3084, 29871, 198},
       {1, 410, 258, 257, 108, 113, 435, 412, 421, 292, 410, 198}},
      // Control pieces in the text are plain text unless parse_special.
      {"<s> and </s> stay text",
       {1, 529, 29879, 29958, 322, 1533, 29879, 29958, 7952, 1426},
       {1, 410, 504, 419, 505, 269, 410, 504, 492, 419, 505, 349, 283, 259, 411, 444, 413}},
      {"It's 3.14159, isn't it?",
       {1, 739, 29915, 29879, 29871, 29941, 29889, 29896, 29946, 29896, 29945, 29929, 29892, 3508,
        29915, 29873, 372, 29973},
       {1,   359, 413, 439, 419, 410, 472, 426, 475, 484, 475,
        480, 483, 432, 410, 293, 416, 439, 413, 312, 450}},
      {"\t\ttabs", {1, 29871, 12, 12, 21175}, {1, 410, 12, 12, 413, 412, 430, 419}},
      // Equal scores (the same pair twice in a row): the leftmost pair merges first.
      {"aooo qqq kkk lll!",
       {1, 263, 3634, 29877, 3855, 24349, 413, 6859, 301, 645, 29991},
       {1, 261, 347, 414, 410, 456, 456, 456, 409, 433, 433, 278, 306, 443}},
  };
  return cases;
}

TEST(TokenizerTest, MatchesLlamaCppOnTheLlama2Vocabulary) {
  for (const Case& c : Cases()) EXPECT_EQ(Llama2().Encode(c.text), c.llama2) << c.text;
}

TEST(TokenizerTest, MatchesLlamaCppOnTheStories260KVocabulary) {
  for (const Case& c : Cases()) EXPECT_EQ(Stories().Encode(c.text), c.stories) << c.text;
}

TEST(TokenizerTest, SpecialTokensAndBos) {
  EXPECT_EQ(Llama2().Encode("Hello world", /*add_special=*/false),
            (std::vector<int32_t>{15043, 3186}));
  // With parse_special, "<s>" and "</s>" become BOS and EOS, and the text after a special token
  // gets the leading space again.
  EXPECT_EQ(Llama2().Encode("<s> and </s> parsed", true, /*parse_special=*/true),
            (std::vector<int32_t>{1, 1, 29871, 322, 29871, 2, 29871, 21213}));
  EXPECT_EQ(Llama2().bos(), 1);
  EXPECT_EQ(Llama2().eos(), 2);
  EXPECT_TRUE(Llama2().IsEndOfGeneration(2));
}

// Golden files: llama.cpp's ids for the first 4000 bytes of each corpus (BOS added).
class RealTextTest : public ::testing::TestWithParam<const char*> {};

TEST_P(RealTextTest, MatchesLlamaCppAndRoundTrips) {
  const std::string name = GetParam();
  const std::string corpus = std::string(name) == "wikitext2_test" ? "wikitext2_test.tokens" : name;
  const std::string text = ReadFile(RepoPath("tests/data/text/" + corpus + ".txt")).substr(0, 4000);
  ASSERT_EQ(text.size(), 4000u);
  std::vector<int32_t> expected;
  for (absl::string_view line :
       absl::StrSplit(ReadFile(RepoPath("tests/text/golden/llama2_" + name + "_4000.ids")), '\n')) {
    if (line.empty() || line.front() == '#') continue;
    for (absl::string_view id : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
      int32_t value;
      ASSERT_TRUE(absl::SimpleAtoi(id, &value)) << id;
      expected.push_back(value);
    }
  }
  ASSERT_GT(expected.size(), 1000u);
  const std::vector<int32_t> ids = Llama2().Encode(text);
  ASSERT_EQ(ids.size(), expected.size());
  for (size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(ids[i], expected[i]) << "token " << i;

  // Decoding gives the text back: the leading space Encode added is dropped (without BOS), or kept
  // after a BOS that Decode removes, as in llama.cpp.
  EXPECT_EQ(Llama2().Decode(Llama2().Encode(text, false)), text);
  EXPECT_EQ(Llama2().Decode(ids, /*remove_special=*/true), " " + text);
  EXPECT_EQ(Stories().Decode(Stories().Encode(text, false)), text);
}

INSTANTIATE_TEST_SUITE_P(Corpora, RealTextTest,
                         ::testing::Values("tinyshakespeare", "tinystories_valid_head",
                                           "wikitext2_test"),
                         [](const auto& info) { return std::string(info.param); });

TEST(TokenizerTest, RoundTripsEveryLineOfRealText) {
  for (const char* corpus : {"tinyshakespeare.txt", "wikitext2_test.tokens.txt"}) {
    const std::string text = ReadFile(RepoPath(std::string("tests/data/text/") + corpus));
    int lines = 0;
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      if (++lines > 3000) break;
      const std::string s(line);
      ASSERT_EQ(Llama2().Decode(Llama2().Encode(s, false)), s) << corpus << ": " << s;
      ASSERT_EQ(Stories().Decode(Stories().Encode(s, false)), s) << corpus << ": " << s;
    }
  }
}

TEST(TokenizerTest, PiecesOfEachTokenType) {
  const Tokenizer& t = Llama2();
  EXPECT_EQ(t.TokenToPiece(15043), " Hello");  // normal: "▁" becomes a space
  EXPECT_EQ(t.TokenToPiece(13), "\n");         // byte fallback <0x0A>
  EXPECT_EQ(t.TokenToPiece(243), std::string(1, '\xf0'));
  EXPECT_EQ(t.TokenToPiece(1), "");                       // control: hidden...
  EXPECT_EQ(t.TokenToPiece(1, /*special=*/true), "<s>");  // ...unless asked
  EXPECT_EQ(t.TokenToPiece(0), "");                       // unknown
  EXPECT_EQ(t.TokenToPiece(-1), "");
  EXPECT_EQ(t.TokenToPiece(32000), "");
  EXPECT_EQ(t.PieceToToken("\xe2\x96\x81Hello"), 15043);
  EXPECT_EQ(t.PieceToToken("no such piece"), -1);
  // Decode with BOS kept: the control token prints nothing and the space stays.
  const std::vector<int32_t> ids = {1, 15043, 3186, 2};
  EXPECT_EQ(t.Decode(ids), " Hello world");
  EXPECT_EQ(t.Decode(ids, false, /*unparse_special=*/true), "<s> Hello world</s>");
}

TEST(TokenizerTest, RejectsAnInvalidVocabulary) {
  Vocabulary v;
  v.pieces = {"<unk>", "<s>", "</s>"};
  v.scores = {0, 0};
  v.types = {2, 3, 3};
  EXPECT_FALSE(Tokenizer::Create(v).ok());
  v.scores.push_back(0);
  v.bos_id = 7;
  EXPECT_FALSE(Tokenizer::Create(v).ok());
  v.bos_id = 1;
  // Without byte pieces every byte falls back to the unknown token.
  absl::StatusOr<Tokenizer> t = Tokenizer::Create(v);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->Encode("ab"), (std::vector<int32_t>{1, 0, 0, 0, 0, 0}));  // "▁" is 3 bytes
}

}  // namespace
}  // namespace pinfer
