// libFuzzer target: tokenizer.json of HF checkpoints (ReadTokenizerJson) and, after it, what
// ReadHfTokenizer adds: tokenizer_config.json (added tokens, special ids by name, chat template),
// padding to the model's vocabulary and config.json's special ids. The input is tokenizer.json,
// optionally followed by a NUL byte and tokenizer_config.json (a JSON text has no NUL byte).
// Accepted vocabularies that validate (as the converter requires) must tokenize (fuzz_checks.h):
// SentencePiece-style ones and byte-level BPE ones (a ByteLevel pre-tokenizer: the PCRE2
// pre-tokenizer and the merges by rank). The corpus seeds byte_level_{falcon,llama_bpe}.json are
// tests/data/bpe's tokenizer.json files cut to their first 40 merges.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <vector>

#include "tests/fuzz/fuzz_checks.h"
#include "tests/fuzz/fuzz_file.h"
#include "tools/convert/hf_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pinfer;
  const auto* nul = static_cast<const uint8_t*>(std::memchr(data, 0, size));
  const size_t json_size = nul != nullptr ? static_cast<size_t>(nul - data) : size;
  const std::string path = fuzz::WriteScratchFile("tokenizer.json", {data, json_size});
  const std::string config_path = fuzz::ScratchDir() + "/tokenizer_config.json";
  if (nul != nullptr) {
    fuzz::WriteScratchFile("tokenizer_config.json", {nul + 1, size - json_size - 1});
  } else {
    std::filesystem::remove(config_path);
  }

  absl::StatusOr<Vocabulary> vocabulary = ReadTokenizerJson(path);
  if (!vocabulary.ok()) return fuzz::Rejected(vocabulary.status());
  fuzz::ExerciseVocabulary(*vocabulary);

  // As hf_source.cc calls it: padded to a few more embedding rows, with config.json's ids.
  HfConfig config;
  config.bos_token_id = 1;
  config.eos_token_id = 2;
  config.pad_token_id = -1;
  std::vector<std::string> notes;
  const int64_t rows = static_cast<int64_t>(vocabulary->size()) + 3;
  absl::StatusOr<Vocabulary> full = ReadHfTokenizer(fuzz::ScratchDir(), path, config, rows, notes);
  if (!full.ok()) return fuzz::Rejected(full.status());
  fuzz::Require(static_cast<int64_t>(full->size()) == rows, "not padded to the model's rows");
  fuzz::ExerciseVocabulary(*full);
  return 0;
}
