// libFuzzer target: the llama2.c tokenizer.bin reader (ReadLlama2cTokenizer). The file does not
// record its token count (the checkpoint does), so the input's first two bytes give it
// (little-endian, plus one) and the rest is the tokenizer.bin. An accepted vocabulary has that
// many tokens and, when it passes Validate() (as the converter requires), must tokenize
// (fuzz_checks.h).
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_checks.h"
#include "tests/fuzz/fuzz_file.h"
#include "tools/convert/llama2c_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pinfer;
  if (size < 2) return 0;
  const int64_t vocab_size = 1 + (data[0] | (data[1] << 8));
  const std::string path = fuzz::WriteScratchFile("tokenizer.bin", {data + 2, size - 2});
  absl::StatusOr<Vocabulary> vocabulary = ReadLlama2cTokenizer(path, vocab_size);
  if (!vocabulary.ok()) return fuzz::Rejected(vocabulary.status());
  fuzz::Require(static_cast<int64_t>(vocabulary->size()) == vocab_size, "wrong token count");
  fuzz::ExerciseVocabulary(*vocabulary);
  return 0;
}
