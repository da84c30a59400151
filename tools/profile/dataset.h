// pi-profile's input: text files turned into chunks of token ids.
//
// Files:
//   - *.jsonl / *.ndjson: one JSON object per line; its "text" string is one document. Blank lines
//     are skipped; a line that is not JSON, not an object, or has no string "text" is an error.
//   - anything else: plain UTF-8 text, the whole file one document (a leading BOM is dropped). It
//     is read in pieces of about 64 KiB cut at blank lines (else at line ends), so memory stays
//     bounded whatever the file size.
// Invalid UTF-8 is an error naming the file and the byte offset (and the line, for JSONL).
//
// Tokens: every document is tokenized with BOS first (when the vocabulary adds BOS); the pieces
// after the first piece of a text file without. The documents' tokens are concatenated into one
// stream over all files in order, which is cut into chunks of `context` tokens. Each chunk starts
// with BOS (prepended when the stream does not have one there, as llama.cpp's perplexity does) and
// is evaluated from an empty KV cache. `max_tokens` bounds the tokens of all chunks, BOS included.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/text/tokenizer.h"

namespace pinfer {

// The offset of the first byte that does not start a valid UTF-8 sequence (RFC 3629: no overlong
// forms, no surrogates, nothing above U+10FFFF; a sequence cut by the end is invalid), or nullopt.
std::optional<size_t> FindInvalidUtf8(std::string_view text);

enum class DatasetFormat { kText, kJsonl };
DatasetFormat DatasetFormatOf(std::string_view path);

// At least one file; every file exists, is a regular readable file and is not empty.
absl::Status CheckDatasetFiles(const std::vector<std::string>& paths);

struct TextPiece {
  std::string text;
  bool starts_document = false;  // tokenized with BOS
};

// Streams the pieces of one dataset file.
class DatasetReader {
 public:
  // Text pieces are cut near `piece_bytes` (tests make it small).
  static absl::StatusOr<std::unique_ptr<DatasetReader>> Open(const std::string& path,
                                                             size_t piece_bytes = kPieceBytes);
  ~DatasetReader();
  DatasetReader(const DatasetReader&) = delete;
  DatasetReader& operator=(const DatasetReader&) = delete;

  // The next piece; false at the end of the file. A file without any text is an error at its end.
  absl::StatusOr<bool> Next(TextPiece& piece);
  // Bytes of the file handed out (or skipped) so far.
  uint64_t offset() const { return buffer_offset_; }

  static constexpr size_t kPieceBytes = 64 << 10;

 private:
  DatasetReader(std::string path, std::FILE* file, DatasetFormat format, size_t piece_bytes)
      : path_(std::move(path)), file_(file), format_(format), piece_bytes_(piece_bytes) {}
  absl::StatusOr<bool> NextText(TextPiece& piece);
  absl::StatusOr<bool> NextJsonl(TextPiece& piece);
  // Reads up to `bytes` more bytes into buffer_; false at the end of the file.
  absl::StatusOr<bool> Fill(size_t bytes);

  std::string path_;
  std::FILE* file_;
  DatasetFormat format_;
  size_t piece_bytes_;
  std::string buffer_;          // bytes read and not yet handed out
  uint64_t buffer_offset_ = 0;  // file offset of buffer_[0]
  bool eof_ = false;
  bool started_ = false;  // the first piece (or record) was handed out
  bool saw_text_ = false;
  int64_t line_ = 0;  // JSONL: lines consumed
};

struct ChunkerOptions {
  int64_t context = 0;      // tokens per chunk (at least 2)
  int64_t max_tokens = -1;  // -1: the whole dataset
};

// The chunks of a whole dataset, in order. Holds one piece's tokens at a time.
class TokenChunker {
 public:
  TokenChunker(std::vector<std::string> files, const Tokenizer& tokenizer,
               const ChunkerOptions& options);
  // The next chunk; false when the dataset or the token budget is exhausted.
  absl::StatusOr<bool> Next(std::vector<int32_t>& chunk);
  int64_t tokens() const { return tokens_; }
  int64_t chunks() const { return chunks_; }
  // Bytes of the dataset files read so far (progress while tokenizing).
  uint64_t bytes_read() const { return bytes_done_ + (reader_ ? reader_->offset() : 0); }

 private:
  // Makes at least `wanted` stream tokens available unless the dataset ends first.
  absl::Status Refill(size_t wanted);
  size_t available() const { return pending_.size() - pending_pos_; }

  std::vector<std::string> files_;
  const Tokenizer& tokenizer_;
  ChunkerOptions options_;
  size_t next_file_ = 0;
  std::unique_ptr<DatasetReader> reader_;
  std::vector<int32_t> pending_;
  size_t pending_pos_ = 0;
  int64_t tokens_ = 0;
  int64_t chunks_ = 0;
  uint64_t bytes_done_ = 0;  // of the files already finished
};

}  // namespace pinfer
