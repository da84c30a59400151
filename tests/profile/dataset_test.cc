// pi-profile's datasets: UTF-8 validation, text pieces, JSONL records, bad files, and chunking.
#include "tools/profile/dataset.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/model/model.h"
#include "runtime/text/tokenizer.h"
#include "tests/runtime/test_models.h"

namespace pinfer {
namespace {

namespace fs = std::filesystem;

std::string WriteScratch(const std::string& name, const std::string& contents) {
  const std::string path = (fs::path(test::ScratchDir()) / name).string();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  return path;
}

void ExpectError(const absl::Status& status, std::initializer_list<std::string> parts) {
  ASSERT_FALSE(status.ok());
  for (const std::string& part : parts) {
    EXPECT_TRUE(absl::StrContains(status.message(), part)) << status.message() << " lacks " << part;
  }
}

// Every piece of a file, or the error.
absl::StatusOr<std::vector<TextPiece>> ReadAll(const std::string& path, size_t piece_bytes) {
  absl::StatusOr<std::unique_ptr<DatasetReader>> reader = DatasetReader::Open(path, piece_bytes);
  if (!reader.ok()) return reader.status();
  std::vector<TextPiece> pieces;
  while (true) {
    TextPiece piece;
    absl::StatusOr<bool> more = (*reader)->Next(piece);
    if (!more.ok()) return more.status();
    if (!*more) return pieces;
    pieces.push_back(std::move(piece));
  }
}

TEST(Utf8Test, FindsTheFirstInvalidByte) {
  EXPECT_EQ(FindInvalidUtf8(""), std::nullopt);
  EXPECT_EQ(FindInvalidUtf8("plain ASCII\n"), std::nullopt);
  EXPECT_EQ(FindInvalidUtf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF"),
            std::nullopt);  // é € 😀 U+10FFFF
  const struct {
    std::string text;
    size_t offset;
  } bad[] = {
      {"ab\x80", 2},               // lone continuation byte
      {"a\xC0\x80", 1},            // overlong NUL
      {"a\xC1\xBF", 1},            // overlong
      {"ab\xE0\x80\x80", 2},       // overlong three bytes
      {"\xED\xA0\x80", 0},         // a UTF-16 surrogate
      {"xyz\xF4\x90\x80\x80", 3},  // above U+10FFFF
      {"\xF5\x80\x80\x80", 0},     //
      {"ok\xC3", 2},               // cut by the end
      {"ok\xE2\x82", 2},           //
      {"ok\xE2\x28\xA1", 2},       // bad continuation
      {"\xFF", 0},                 //
  };
  for (const auto& b : bad) {
    EXPECT_EQ(FindInvalidUtf8(b.text), b.offset) << absl::CEscape(b.text);
  }
}

TEST(DatasetReaderTest, TextPiecesCutAtBlankLinesAndCoverTheFile) {
  std::string text = "\xEF\xBB\xBF";  // a BOM, dropped
  std::string body;
  for (int i = 0; i < 40; ++i) {
    absl::StrAppend(&body, "Story ", i, " line one.\nLine two of story ", i, ".\n\n");
  }
  const std::string path = WriteScratch("pieces.txt", text + body);
  absl::StatusOr<std::vector<TextPiece>> pieces = ReadAll(path, 200);
  ASSERT_TRUE(pieces.ok()) << pieces.status();
  ASSERT_GT(pieces->size(), 5u);
  std::string joined;
  for (size_t i = 0; i < pieces->size(); ++i) {
    const TextPiece& p = (*pieces)[i];
    EXPECT_EQ(p.starts_document, i == 0);
    EXPECT_LE(p.text.size(), 200u);
    if (i + 1 < pieces->size()) {
      EXPECT_TRUE(absl::EndsWith(p.text, "\n\n")) << p.text;
    }
    joined += p.text;
  }
  EXPECT_EQ(joined, body);
}

TEST(DatasetReaderTest, AGiantLineIsCutOutsideUtf8Sequences) {
  std::string line;
  for (int i = 0; i < 300; ++i) line += "\xE2\x82\xAC";  // no newline at all: 900 bytes
  const std::string path = WriteScratch("giant_line.txt", line);
  absl::StatusOr<std::vector<TextPiece>> pieces = ReadAll(path, 100);
  ASSERT_TRUE(pieces.ok()) << pieces.status();
  std::string joined;
  for (const TextPiece& p : *pieces) {
    EXPECT_EQ(FindInvalidUtf8(p.text), std::nullopt);
    joined += p.text;
  }
  EXPECT_EQ(joined, line);
}

TEST(DatasetReaderTest, InvalidUtf8NamesTheFileAndTheByteOffset) {
  std::string text(5000, 'a');
  text[4321] = '\xC3';  // followed by 'a': not a continuation
  const std::string path = WriteScratch("bad_utf8.txt", text);
  ExpectError(ReadAll(path, 1024).status(), {path, "invalid UTF-8", "byte offset 4321"});
  const std::string jsonl =
      WriteScratch("bad_utf8.jsonl", "{\"text\": \"fine\"}\n\n{\"text\": \"caf\xC3\xA9 \xFF\"}\n");
  ExpectError(ReadAll(jsonl, 1024).status(),
              {jsonl, "invalid UTF-8", "byte offset 34", "(line 3)"});
}

TEST(DatasetReaderTest, JsonlRecordsAreDocuments) {
  const std::string path =
      WriteScratch("records.jsonl",
                   "{\"text\": \"One day, Tom ran.\", \"id\": 1}\n"
                   "\n"
                   "  {\"id\": 2, \"text\": \"Lily \\u00e9 \\\"quoted\\\"\\nsecond line\"}\r\n"
                   "{\"text\": \"\"}\n"  // empty: skipped
                   "{\"text\": \"last, no newline\"}");
  absl::StatusOr<std::vector<TextPiece>> pieces = ReadAll(path, 1024);
  ASSERT_TRUE(pieces.ok()) << pieces.status();
  ASSERT_EQ(pieces->size(), 3u);
  EXPECT_EQ((*pieces)[0].text, "One day, Tom ran.");
  EXPECT_EQ((*pieces)[1].text, "Lily \xC3\xA9 \"quoted\"\nsecond line");
  EXPECT_EQ((*pieces)[2].text, "last, no newline");
  for (const TextPiece& p : *pieces) EXPECT_TRUE(p.starts_document);
}

TEST(DatasetReaderTest, BadJsonlLinesNameTheFileAndLine) {
  const struct {
    std::string contents;
    std::string mention;
  } cases[] = {
      {"{\"text\": \"a\"}\n{\"body\": \"no text\"}\n", ":2: the record has no \"text\" field"},
      {"{\"text\": \"a\"}\n{\"text\": 42}\n", ":2: \"text\" is not a string"},
      {"[\"text\"]\n", ":1: expected a JSON object"},
      {"{\"text\": \"a\"}\n\n{\"text\": \"unterminated}\n", ":3: not valid JSON"},
      {"\n\n   \n", "contains no text"},
      {"{\"text\": \"\"}\n{\"text\": \"  \"}\n", "contains no text"},
  };
  int i = 0;
  for (const auto& c : cases) {
    const std::string path = WriteScratch(absl::StrCat("bad_", i++, ".jsonl"), c.contents);
    ExpectError(ReadAll(path, 1024).status(), {path, c.mention});
  }
}

TEST(DatasetFilesTest, MissingEmptyAndOddFilesAreErrors) {
  ExpectError(CheckDatasetFiles({}), {"--dataset", "no dataset files"});
  const std::string missing = test::ScratchDir() + "/no_such_dataset.txt";
  ExpectError(CheckDatasetFiles({missing}), {missing, "no such file"});
  const std::string empty = WriteScratch("empty.txt", "");
  ExpectError(CheckDatasetFiles({empty}), {empty, "empty"});
  ExpectError(CheckDatasetFiles({test::ScratchDir()}), {test::ScratchDir(), "not a regular file"});
  const std::string blank = WriteScratch("blank.txt", " \n\n\t\n");
  EXPECT_TRUE(CheckDatasetFiles({blank}).ok());
  ExpectError(ReadAll(blank, 1024).status(), {blank, "contains no text"});
  EXPECT_EQ(DatasetFormatOf("a/b.JSONL"), DatasetFormat::kJsonl);
  EXPECT_EQ(DatasetFormatOf("a/b.ndjson"), DatasetFormat::kJsonl);
  EXPECT_EQ(DatasetFormatOf("a/b.json.txt"), DatasetFormat::kText);
}

class TokenChunkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Model>> model =
        Model::Load(test::ConvertedModel(test::BundledModel::kStories260K));
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = *std::move(model);
    absl::StatusOr<Tokenizer> tokenizer = Tokenizer::Create(*model_->vocabulary());
    ASSERT_TRUE(tokenizer.ok());
    tokenizer_ = std::make_unique<Tokenizer>(*std::move(tokenizer));
  }
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

TEST_F(TokenChunkerTest, ChunksAreTheDocumentStreamCutWithBosFirst) {
  const std::vector<std::string> texts = {"Tom had a red ball. He liked to throw it high.",
                                          "Lily saw a cat.",
                                          "The sun was warm and the birds sang in the trees."};
  const std::string txt = WriteScratch("chunk_a.txt", texts[0] + "\n");
  const std::string jsonl = WriteScratch(
      "chunk_b.jsonl",
      absl::StrCat("{\"text\": \"", texts[1], "\"}\n{\"text\": \"", texts[2], "\"}\n"));
  // The stream by definition: each document with BOS; the text file keeps its newline.
  std::vector<int32_t> stream = tokenizer_->Encode(texts[0] + "\n", true);
  for (int k = 1; k < 3; ++k) {
    const std::vector<int32_t> t = tokenizer_->Encode(texts[k], true);
    stream.insert(stream.end(), t.begin(), t.end());
  }
  const int32_t bos = tokenizer_->bos();
  ASSERT_EQ(stream[0], bos);
  for (int64_t context : {8, 13, 1000}) {
    TokenChunker chunker({txt, jsonl}, *tokenizer_, {context, -1});
    std::vector<int32_t> rebuilt, chunk;
    while (true) {
      absl::StatusOr<bool> more = chunker.Next(chunk);
      ASSERT_TRUE(more.ok()) << more.status();
      if (!*more) break;
      ASSERT_LE(static_cast<int64_t>(chunk.size()), context);
      ASSERT_EQ(chunk[0], bos);
      // A BOS that the stream did not have there was prepended.
      const bool prepended = rebuilt.size() < stream.size() && stream[rebuilt.size()] != bos;
      rebuilt.insert(rebuilt.end(), chunk.begin() + (prepended ? 1 : 0), chunk.end());
    }
    EXPECT_EQ(rebuilt, stream) << "context " << context;
    if (context == 1000) {
      EXPECT_EQ(chunker.chunks(), 1);
    }
  }
  // The token budget counts every token of every chunk, prepended BOS included.
  TokenChunker limited({txt, jsonl}, *tokenizer_, {8, 20});
  std::vector<int32_t> chunk;
  int64_t total = 0;
  while (*limited.Next(chunk)) total += static_cast<int64_t>(chunk.size());
  EXPECT_EQ(total, 20);
  EXPECT_EQ(limited.tokens(), 20);
}

TEST_F(TokenChunkerTest, BadInputSurfacesFromTheChunker) {
  const std::string good = WriteScratch("good.txt", "Once upon a time.\n");
  std::string text = "fine text\n";
  text += '\xFE';
  const std::string bad = WriteScratch("bad_second.txt", text);
  TokenChunker chunker({good, bad}, *tokenizer_, {512, -1});
  std::vector<int32_t> chunk;
  ExpectError(chunker.Next(chunk).status(), {bad, "byte offset 10"});
}

}  // namespace
}  // namespace pinfer
