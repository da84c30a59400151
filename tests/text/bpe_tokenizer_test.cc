// The byte-level BPE tokenizer against llama.cpp's. tests/data/bpe holds our own small vocabularies
// (one per pre-tokenizer family, as a vocabulary-only GGUF and as a tokenizer.json) and the ids
// llama.cpp's llama-tokenize gives for hard strings and corpus excerpts on the GGUFs (see its
// README). Both files of a family must give exactly those ids. With LLAMA_CPP_DIR set, llama.cpp's
// own vocabulary files and their .inp/.out cases are checked too, and llama-tokenize is run live.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "format/metadata.h"
#include "gtest/gtest.h"
#include "runtime/text/tokenizer.h"
#include "tests/convert/test_util.h"
#include "tests/text/bpe_fixture.h"
#include "tools/convert/gguf_source.h"
#include "tools/convert/hf_tokenizer.h"

namespace pinfer {
namespace {

using testing::RepoPath;

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return std::move(text).str();
}

std::vector<int32_t> ParseIds(std::string_view line) {
  std::vector<int32_t> ids;
  for (absl::string_view field :
       absl::StrSplit(absl::string_view(line.data(), line.size()), ' ', absl::SkipEmpty())) {
    int32_t id;
    EXPECT_TRUE(absl::SimpleAtoi(field, &id)) << field;
    ids.push_back(id);
  }
  return ids;
}

// llama.cpp's test-case files: cases separated (and ended) by "\n__ggml_vocab_test__\n".
std::vector<std::string> ReadCases(const std::string& path) {
  std::vector<std::string> cases = absl::StrSplit(ReadText(path), "\n__ggml_vocab_test__\n");
  if (!cases.empty() && cases.back().empty()) cases.pop_back();
  return cases;
}

std::vector<std::vector<int32_t>> ReadIdLines(const std::string& path) {
  std::vector<std::vector<int32_t>> lines;
  for (absl::string_view line : absl::StrSplit(ReadText(path), '\n')) {
    lines.push_back(ParseIds(std::string_view(line.data(), line.size())));
  }
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

bool IsValidUtf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const uint8_t c = static_cast<uint8_t>(s[i]);
    const size_t n = c < 0x80             ? 1
                     : (c & 0xe0) == 0xc0 ? 2
                     : (c & 0xf0) == 0xe0 ? 3
                     : (c & 0xf8) == 0xf0 ? 4
                                          : 0;
    if (n == 0 || i + n > s.size() || (n == 2 && c < 0xc2)) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<uint8_t>(s[i + k]) & 0xc0) != 0x80) return false;
    }
    if (n == 3 && c == 0xed && static_cast<uint8_t>(s[i + 1]) >= 0xa0) return false;  // surrogate
    i += n;
  }
  return true;
}

std::string FamilyDir(const std::string& family) { return RepoPath("tests/data/bpe/" + family); }

absl::StatusOr<Vocabulary> ReadFixture(const std::string& family, const std::string& source) {
  if (source == "gguf") {
    std::vector<std::string> notes;
    return ReadGgufVocabulary(FamilyDir(family) + "/vocab.gguf", notes);
  }
  return ReadTokenizerJson(FamilyDir(family) + "/tokenizer.json");
}

Tokenizer MakeTokenizer(const absl::StatusOr<Vocabulary>& v) {
  EXPECT_TRUE(v.ok()) << v.status();
  absl::StatusOr<Tokenizer> t = Tokenizer::Create(*v);
  EXPECT_TRUE(t.ok()) << t.status();
  return *std::move(t);
}

struct FixtureCase {
  std::string family;
  std::string source;  // "gguf" or "json"
};

void PrintTo(const FixtureCase& c, std::ostream* os) { *os << c.family << " " << c.source; }

class BpeGoldenTest : public ::testing::TestWithParam<FixtureCase> {};

// llama-tokenize's defaults: BOS as the vocabulary says, special tokens parsed; and
// --no-bos --no-parse-special.
TEST_P(BpeGoldenTest, HardStringsMatchLlamaCpp) {
  const Tokenizer tokenizer = MakeTokenizer(ReadFixture(GetParam().family, GetParam().source));
  const std::vector<std::string> cases = ReadCases(RepoPath("tests/data/bpe/hard_strings.txt"));
  const auto with_special = ReadIdLines(FamilyDir(GetParam().family) + "/hard_strings.ids");
  const auto plain = ReadIdLines(FamilyDir(GetParam().family) + "/hard_strings_plain.ids");
  ASSERT_GE(cases.size(), 50u);
  ASSERT_EQ(with_special.size(), cases.size());
  ASSERT_EQ(plain.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(tokenizer.Encode(cases[i], true, true), with_special[i]) << "case " << i;
    EXPECT_EQ(tokenizer.Encode(cases[i], false, false), plain[i]) << "case " << i;
  }
}

TEST_P(BpeGoldenTest, CorpusExcerptsMatchLlamaCppAndRoundTrip) {
  const Tokenizer tokenizer = MakeTokenizer(ReadFixture(GetParam().family, GetParam().source));
  for (const std::string& corpus : testing::BpeGoldenCorpora()) {
    const std::string text = testing::BpeGoldenExcerpt(corpus);
    const auto expected = ReadIdLines(FamilyDir(GetParam().family) + "/" + corpus + ".ids");
    ASSERT_EQ(expected.size(), 1u) << corpus;
    const std::vector<int32_t> ids = tokenizer.Encode(text, true, true);
    EXPECT_EQ(ids, expected[0]) << corpus;
    EXPECT_EQ(tokenizer.Decode(ids, /*remove_special=*/true), text) << corpus;
  }
}

TEST_P(BpeGoldenTest, HardStringsRoundTrip) {
  const Tokenizer tokenizer = MakeTokenizer(ReadFixture(GetParam().family, GetParam().source));
  for (const std::string& text : ReadCases(RepoPath("tests/data/bpe/hard_strings.txt"))) {
    if (!IsValidUtf8(text)) continue;  // invalid bytes come back as U+FFFD, as in llama.cpp
    EXPECT_EQ(tokenizer.Decode(tokenizer.Encode(text, false, false)), text);
    EXPECT_EQ(tokenizer.Decode(tokenizer.Encode(text, false, true), false, /*unparse=*/true), text);
  }
}

std::vector<FixtureCase> AllFixtures() {
  std::vector<FixtureCase> cases;
  for (const std::string& family : testing::BpeFixtureFamilies()) {
    cases.push_back({family, "gguf"});
    cases.push_back({family, "json"});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, BpeGoldenTest, ::testing::ValuesIn(AllFixtures()),
                         [](const auto& info) {
                           std::string name = info.param.family + "_" + info.param.source;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

TEST(BpeTokenizerTest, TheTwoSourcesAgreeOnTheVocabulary) {
  for (const std::string& family : testing::BpeFixtureFamilies()) {
    absl::StatusOr<Vocabulary> gguf = ReadFixture(family, "gguf");
    absl::StatusOr<Vocabulary> json = ReadFixture(family, "json");
    ASSERT_TRUE(gguf.ok() && json.ok()) << family;
    EXPECT_EQ(gguf->model, "gpt2");
    EXPECT_EQ(gguf->pre_tokenizer, family);
    EXPECT_EQ(json->pre_tokenizer, family);
    EXPECT_EQ(gguf->pieces, json->pieces) << family;
    EXPECT_EQ(gguf->merges, json->merges) << family;
    EXPECT_EQ(gguf->types, json->types) << family;
    EXPECT_EQ(gguf->bos_id, json->bos_id) << family;
    EXPECT_EQ(gguf->eos_id, json->eos_id) << family;
    EXPECT_EQ(gguf->add_bos, json->add_bos) << family;
    EXPECT_EQ(gguf->add_bos, family == "llama-bpe") << family;
  }
}

// model.pi carries the vocabulary as metadata; what comes back tokenizes the same.
TEST(BpeTokenizerTest, VocabularySurvivesModelMetadata) {
  absl::StatusOr<Vocabulary> v = ReadFixture("falcon", "gguf");
  ASSERT_TRUE(v.ok()) << v.status();
  Metadata m;
  v->ToMetadata(m);
  absl::StatusOr<Vocabulary> back = Vocabulary::FromMetadata(m);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->model, "gpt2");
  EXPECT_EQ(back->pre_tokenizer, "falcon");
  EXPECT_EQ(back->merges, v->merges);
  EXPECT_EQ(back->unk_id, -1);
  const std::string text = testing::BpeGoldenExcerpt("tinyshakespeare");
  EXPECT_EQ(MakeTokenizer(back).Encode(text), MakeTokenizer(v).Encode(text));
}

TEST(BpeTokenizerTest, WholeCorpusRoundTrips) {
  const Tokenizer tokenizer = MakeTokenizer(ReadFixture("llama-bpe", "gguf"));
  const std::string text = ReadText(RepoPath("tests/data/text/tinystories_valid_head.txt"));
  ASSERT_GT(text.size(), 500000u);
  const std::vector<int32_t> ids = tokenizer.Encode(text, false, false);
  EXPECT_LT(ids.size(), text.size() / 2);  // the merges do compress
  EXPECT_EQ(tokenizer.Decode(ids), text);
}

TEST(BpeTokenizerTest, PiecesSpecialsAndEndOfTurn) {
  const Tokenizer llama3 = MakeTokenizer(ReadFixture("llama-bpe", "json"));
  const int32_t eot = llama3.PieceToToken("<|eot_id|>");
  ASSERT_GE(eot, 0);
  EXPECT_TRUE(llama3.IsEndOfGeneration(eot));
  EXPECT_TRUE(llama3.IsEndOfGeneration(llama3.eos()));
  EXPECT_FALSE(llama3.IsEndOfGeneration(llama3.PieceToToken("<|start_header_id|>")));
  EXPECT_EQ(llama3.TokenToPiece(eot), "");
  EXPECT_EQ(llama3.TokenToPiece(eot, /*special=*/true), "<|eot_id|>");
  EXPECT_EQ(llama3.TokenToPiece(llama3.PieceToToken("\xc4\xa0")), " ");   // "Ġ"
  EXPECT_EQ(llama3.TokenToPiece(llama3.PieceToToken("\xc4\x8a")), "\n");  // "Ċ"
  // A word that is a piece no merge sequence makes: whole with Llama 3's ignore_merges, split by
  // the merges elsewhere.
  const int32_t hello = llama3.PieceToToken("\xc4\xa0Hello");  // "ĠHello"
  ASSERT_GE(hello, 0);
  EXPECT_EQ(llama3.Encode(" Hello", false, false), std::vector<int32_t>{hello});
  // A user-defined token is cut out even without parse_special, as in llama.cpp.
  const Tokenizer falcon = MakeTokenizer(ReadFixture("falcon", "gguf"));
  const int32_t user = falcon.PieceToToken("[user]");
  ASSERT_GE(user, 0);
  const std::vector<int32_t> ids = falcon.Encode("a[user]b", false, false);
  EXPECT_NE(std::find(ids.begin(), ids.end(), user), ids.end());
}

}  // namespace
}  // namespace pinfer
