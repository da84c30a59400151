#include "tools/tokenize/model_vocabulary.h"

#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "format/file_access.h"
#include "format/pi_file.h"
#include "format/pi_format.h"
#include "tools/convert/gguf_file.h"
#include "tools/convert/gguf_source.h"
#include "tools/convert/hf_tokenizer.h"
#include "tools/convert/source_reader.h"

namespace pinfer {

absl::StatusOr<Vocabulary> ReadModelVocabulary(const std::string& path,
                                               const std::string& tokenizer_path,
                                               std::vector<std::string>& notes) {
  namespace fs = std::filesystem;
  std::error_code error;
  const bool directory = fs::is_directory(path, error);
  if (!directory) {
    absl::StatusOr<std::string> head = ReadRegularFile(path, 8);
    if (!head.ok()) return head.status();
    const auto* bytes = reinterpret_cast<const uint8_t*>(head->data());
    if (LooksLikeGguf({bytes, head->size()})) return ReadGgufVocabulary(path, notes);
    if (head->size() == 8 && std::memcmp(head->data(), kPiMagic, 8) == 0) {
      PiOpenOptions options;
      options.expected_kind = ArtifactKind::kModel;
      absl::StatusOr<std::unique_ptr<PiFile>> pi = PiFile::Open(path, options);
      if (!pi.ok()) return pi.status();
      absl::StatusOr<Vocabulary> vocabulary = Vocabulary::FromMetadata((*pi)->metadata());
      if (!vocabulary.ok()) return (*pi)->Annotate(vocabulary.status());
      return vocabulary;
    }
    const std::string extension = fs::path(path).extension().string();
    if (extension == ".json") return ReadTokenizerJson(path);
    if (extension == ".model") return ReadSentencePieceTokenizer(path);
  }
  // A HuggingFace directory or a llama2.c checkpoint: read as pi-convert reads it (the tensors
  // are only described, not loaded).
  SourceOptions options;
  options.tokenizer_path = tokenizer_path;
  absl::StatusOr<SourceModel> source = ReadSource(path, options);
  if (!source.ok()) return source.status();
  for (std::string& note : source->notes) notes.push_back(std::move(note));
  return std::move(source->vocabulary);
}

}  // namespace pinfer
