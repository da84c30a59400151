#include "tools/profile/dataset.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "format/file_access.h"
#include "format/strings.h"
#include "nlohmann/json.hpp"

namespace pinfer {
namespace {

constexpr size_t kReadBlock = 1 << 16;

bool IsContinuation(uint8_t byte) { return (byte & 0xC0) == 0x80; }

bool HasText(std::string_view text) {
  return std::any_of(text.begin(), text.end(),
                     [](char c) { return !absl::ascii_isspace(static_cast<unsigned char>(c)); });
}

}  // namespace

std::optional<size_t> FindInvalidUtf8(std::string_view text) {
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const uint8_t b = s[i];
    if (b < 0x80) {
      ++i;
      continue;
    }
    size_t length;
    uint8_t low = 0x80, high = 0xBF;  // allowed range of the second byte
    if (b >= 0xC2 && b <= 0xDF) {
      length = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      length = 3;
      if (b == 0xE0) low = 0xA0;   // overlong
      if (b == 0xED) high = 0x9F;  // surrogates
    } else if (b >= 0xF0 && b <= 0xF4) {
      length = 4;
      if (b == 0xF0) low = 0x90;   // overlong
      if (b == 0xF4) high = 0x8F;  // above U+10FFFF
    } else {
      return i;  // a continuation byte, C0/C1 (overlong) or F5..FF
    }
    if (n - i < length || s[i + 1] < low || s[i + 1] > high) return i;
    for (size_t k = 2; k < length; ++k) {
      if (!IsContinuation(s[i + k])) return i;
    }
    i += length;
  }
  return std::nullopt;
}

DatasetFormat DatasetFormatOf(std::string_view path) {
  const std::string lower = absl::AsciiStrToLower(Sv(path));
  if (lower.ends_with(".jsonl") || lower.ends_with(".ndjson")) return DatasetFormat::kJsonl;
  return DatasetFormat::kText;
}

absl::Status CheckDatasetFiles(const std::vector<std::string>& paths) {
  if (paths.empty()) return absl::InvalidArgumentError("--dataset: no dataset files given");
  for (const std::string& path : paths) {
    absl::StatusOr<int> fd = OpenRegularFile(path);
    if (!fd.ok()) return fd.status();
    struct stat st;
    const bool empty = fstat(*fd, &st) == 0 && st.st_size == 0;
    close(*fd);
    if (empty) return absl::InvalidArgumentError(absl::StrCat(path, ": the file is empty"));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<DatasetReader>> DatasetReader::Open(const std::string& path,
                                                                   size_t piece_bytes) {
  absl::StatusOr<int> fd = OpenRegularFile(path);
  if (!fd.ok()) return fd.status();
  std::FILE* file = fdopen(*fd, "rb");
  if (file == nullptr) {
    close(*fd);
    return absl::InternalError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  return std::unique_ptr<DatasetReader>(
      new DatasetReader(path, file, DatasetFormatOf(path), std::max<size_t>(piece_bytes, 16)));
}

DatasetReader::~DatasetReader() { std::fclose(file_); }

absl::StatusOr<bool> DatasetReader::Next(TextPiece& piece) {
  return format_ == DatasetFormat::kJsonl ? NextJsonl(piece) : NextText(piece);
}

absl::StatusOr<bool> DatasetReader::Fill(size_t bytes) {
  if (eof_) return false;
  const size_t at = buffer_.size();
  buffer_.resize(at + bytes);
  const size_t got = std::fread(buffer_.data() + at, 1, bytes, file_);
  buffer_.resize(at + got);
  if (got < bytes) {
    if (std::ferror(file_)) {
      return absl::DataLossError(absl::StrCat(path_, ": read error at byte offset ",
                                              buffer_offset_ + at + got, ": ",
                                              std::strerror(errno)));
    }
    eof_ = true;
  }
  return got > 0;
}

absl::StatusOr<bool> DatasetReader::NextText(TextPiece& piece) {
  while (true) {
    // Read one byte more than a piece, to know whether the file goes on.
    while (!eof_ && buffer_.size() <= piece_bytes_) {
      if (absl::StatusOr<bool> more = Fill(kReadBlock); !more.ok()) return more.status();
    }
    if (buffer_offset_ == 0 && buffer_.starts_with("\xEF\xBB\xBF")) {
      buffer_.erase(0, 3);
      buffer_offset_ = 3;
    }
    if (buffer_.empty()) {
      if (!saw_text_) return absl::InvalidArgumentError(absl::StrCat(path_, ": contains no text"));
      return false;
    }
    size_t cut = buffer_.size();
    if (buffer_.size() > piece_bytes_) {
      const std::string_view window(buffer_.data(), piece_bytes_);
      if (size_t blank = window.rfind("\n\n"); blank != std::string_view::npos && blank > 0) {
        cut = blank + 2;
      } else if (size_t line = window.rfind('\n'); line != std::string_view::npos) {
        cut = line + 1;
      } else {
        // One giant line: cut before a UTF-8 sequence rather than inside one.
        cut = piece_bytes_;
        while (cut > piece_bytes_ - 3 && IsContinuation(static_cast<uint8_t>(buffer_[cut]))) --cut;
      }
    }
    const std::string_view text(buffer_.data(), cut);
    if (std::optional<size_t> bad = FindInvalidUtf8(text)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ": invalid UTF-8 at byte offset ", buffer_offset_ + *bad));
    }
    const bool has_text = HasText(text);
    if (has_text) {
      piece.text.assign(text);
      piece.starts_document = !started_;
      started_ = true;
      saw_text_ = true;
    }
    buffer_.erase(0, cut);
    buffer_offset_ += cut;
    if (has_text) return true;
  }
}

absl::StatusOr<bool> DatasetReader::NextJsonl(TextPiece& piece) {
  using nlohmann::json;
  while (true) {
    // One line: up to the next newline, or the rest of the file.
    size_t newline = buffer_.find('\n');
    while (newline == std::string::npos && !eof_) {
      const size_t searched = buffer_.size();
      if (absl::StatusOr<bool> more = Fill(kReadBlock); !more.ok()) return more.status();
      newline = buffer_.find('\n', searched);
    }
    if (buffer_.empty()) {
      if (!saw_text_) {
        return absl::InvalidArgumentError(
            absl::StrCat(path_, ": contains no text (no JSONL record with a non-empty \"text\")"));
      }
      return false;
    }
    const size_t length = newline == std::string::npos ? buffer_.size() : newline;
    const size_t consumed = newline == std::string::npos ? buffer_.size() : newline + 1;
    std::string line = buffer_.substr(0, length);
    const uint64_t line_offset = buffer_offset_;
    buffer_.erase(0, consumed);
    buffer_offset_ += consumed;
    ++line_;
    if (std::optional<size_t> bad = FindInvalidUtf8(line)) {
      return absl::InvalidArgumentError(absl::StrCat(path_, ": invalid UTF-8 at byte offset ",
                                                     line_offset + *bad, " (line ", line_, ")"));
    }
    if (!HasText(line)) continue;
    const std::string where = absl::StrCat(path_, ":", line_, ": ");
    json record;
    try {
      record = json::parse(line);
    } catch (const json::exception& e) {
      std::string_view message = e.what();
      if (size_t end = message.find("] "); message.starts_with("[json.") && end != message.npos) {
        message.remove_prefix(end + 2);
      }
      return absl::InvalidArgumentError(absl::StrCat(where, "not valid JSON: ", Sv(message)));
    }
    if (!record.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "expected a JSON object with a \"text\" field"));
    }
    const auto text = record.find("text");
    if (text == record.end()) {
      return absl::InvalidArgumentError(absl::StrCat(where, "the record has no \"text\" field"));
    }
    if (!text->is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(where, "\"text\" is not a string"));
    }
    const std::string& value = text->get_ref<const std::string&>();
    if (!HasText(value)) continue;
    piece.text = value;
    piece.starts_document = true;
    saw_text_ = true;
    return true;
  }
}

// ---------------------------------------------------------------------------------------------

TokenChunker::TokenChunker(std::vector<std::string> files, const Tokenizer& tokenizer,
                           const ChunkerOptions& options)
    : files_(std::move(files)), tokenizer_(tokenizer), options_(options) {}

absl::Status TokenChunker::Refill(size_t wanted) {
  while (available() < wanted) {
    if (reader_ == nullptr) {
      if (next_file_ == files_.size()) return absl::OkStatus();
      absl::StatusOr<std::unique_ptr<DatasetReader>> reader =
          DatasetReader::Open(files_[next_file_++]);
      if (!reader.ok()) return reader.status();
      reader_ = *std::move(reader);
    }
    TextPiece piece;
    absl::StatusOr<bool> more = reader_->Next(piece);
    if (!more.ok()) return more.status();
    if (!*more) {
      bytes_done_ += reader_->offset();
      reader_.reset();
      continue;
    }
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(pending_pos_));
    pending_pos_ = 0;
    const std::vector<int32_t> tokens =
        tokenizer_.Encode(piece.text, /*add_special=*/piece.starts_document);
    pending_.insert(pending_.end(), tokens.begin(), tokens.end());
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> TokenChunker::Next(std::vector<int32_t>& chunk) {
  chunk.clear();
  const int64_t budget = options_.max_tokens < 0 ? INT64_MAX : options_.max_tokens - tokens_;
  if (budget <= 0) return false;
  if (absl::Status s = Refill(1); !s.ok()) return s;
  if (available() == 0) return false;
  if (tokenizer_.add_bos() && pending_[pending_pos_] != tokenizer_.bos()) {
    if (budget < 2) return false;  // a chunk of BOS alone says nothing
    chunk.push_back(tokenizer_.bos());
  }
  const size_t room = static_cast<size_t>(std::min<int64_t>(options_.context, budget) -
                                          static_cast<int64_t>(chunk.size()));
  if (absl::Status s = Refill(room); !s.ok()) return s;
  const size_t take = std::min(room, available());
  chunk.insert(chunk.end(), pending_.begin() + static_cast<ptrdiff_t>(pending_pos_),
               pending_.begin() + static_cast<ptrdiff_t>(pending_pos_ + take));
  pending_pos_ += take;
  tokens_ += static_cast<int64_t>(chunk.size());
  ++chunks_;
  return true;
}

}  // namespace pinfer
