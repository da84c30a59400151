#include "tools/convert/llama2c_tokenizer.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "format/byte_io.h"
#include "format/mapped_file.h"

namespace pinfer {
namespace {

bool IsBytePiece(const std::string& piece) {
  return piece.size() == 6 && piece.starts_with("<0x") && piece.back() == '>' &&
         std::isxdigit(static_cast<unsigned char>(piece[3])) &&
         std::isxdigit(static_cast<unsigned char>(piece[4]));
}

}  // namespace

absl::StatusOr<Vocabulary> ReadLlama2cTokenizer(const std::string& path, int64_t vocab_size) {
  absl::StatusOr<std::unique_ptr<MappedFile>> file = MappedFile::Open(path);
  if (!file.ok()) return file.status();
  ByteReader reader((*file)->bytes());
  int32_t max_token_length;
  if (!reader.Get(&max_token_length) || max_token_length <= 0 || max_token_length > 4096) {
    return absl::DataLossError(absl::StrCat(path, ": not a llama2.c tokenizer (bad header)"));
  }
  Vocabulary v;
  v.model = "llama";
  v.bos_id = 1;
  v.eos_id = 2;
  v.unk_id = 0;
  v.pad_id = -1;
  for (int64_t i = 0; i < vocab_size; ++i) {
    float score;
    int32_t length;
    std::string piece;
    if (reader.remaining() == 0) {
      // Ended cleanly between two tokens: a whole tokenizer, of a smaller vocabulary.
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": holds only ", i, " tokens but the model's vocabulary is ",
                       vocab_size, ": is it the tokenizer of another model?"));
    }
    if (!reader.Get(&score) || !reader.Get(&length)) {
      return absl::DataLossError(
          absl::StrCat(path, ": truncated at token ", i, " of ", vocab_size));
    }
    if (length < 0 || length > max_token_length || !std::isfinite(score)) {
      return absl::DataLossError(
          absl::StrCat(path, ": token ", i, " has an invalid length or score"));
    }
    if (!reader.GetString(static_cast<uint64_t>(length), &piece)) {
      return absl::DataLossError(
          absl::StrCat(path, ": truncated at token ", i, " of ", vocab_size));
    }
    TokenType type = TokenType::kNormal;
    if (i == v.unk_id) {
      type = TokenType::kUnknown;
    } else if (i == v.bos_id) {
      piece = "<s>";
      type = TokenType::kControl;
    } else if (i == v.eos_id) {
      piece = "</s>";
      type = TokenType::kControl;
    } else if (IsBytePiece(piece)) {
      type = TokenType::kByte;
    } else {
      piece = absl::StrReplaceAll(piece, {{" ", "\xe2\x96\x81"}});
    }
    v.pieces.push_back(std::move(piece));
    v.scores.push_back(score);
    v.types.push_back(static_cast<int32_t>(type));
  }
  if (reader.remaining() != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": holds more than the model's ", vocab_size,
                     " tokens: is it the tokenizer of another model?"));
  }
  return v;
}

}  // namespace pinfer
