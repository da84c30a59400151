// libFuzzer target: the llama2.c checkpoint reader (ReadLlama2c, v0 f32 and v2 Q8_0). The input is
// the checkpoint; the tokenizer.bin it needs is generated here with as many tokens as the header
// declares (when plausible), so that accepted headers reach the end of the reader. An accepted
// model is then decoded whole (source_checks.h).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "format/byte_io.h"
#include "tests/fuzz/fuzz_checks.h"
#include "tests/fuzz/fuzz_file.h"
#include "tests/fuzz/source_checks.h"
#include "tools/convert/llama2c_source.h"

namespace pinfer::fuzz {
namespace {

// The vocab_size field of the header: int32 at 20 (v0; negative = separate classifier) or at 28
// (v2, after the magic and version).
int32_t DeclaredVocab(const uint8_t* data, size_t size) {
  uint32_t magic = 0;
  if (size >= 4) std::memcpy(&magic, data, 4);
  const size_t at = magic == 0x616b3432 ? 28 : 20;
  int32_t v = 1;
  if (size >= at + 4) std::memcpy(&v, data + at, 4);
  if (v == INT32_MIN) return 1;
  v = std::abs(v);
  return v > 0 && v <= (1 << 16) ? v : 1;
}

// A tokenizer.bin of `n` tokens: the special three, byte pieces, then words.
const std::string& TokenizerFor(int32_t n) {
  static int32_t written = -1;
  static std::string path;
  if (n != written) {
    ByteWriter w;
    w.Put<int32_t>(16);
    for (int32_t i = 0; i < n; ++i) {
      const std::string piece = i < 3 ? std::string(i == 0   ? "<unk>"
                                                    : i == 1 ? "\n<s>\n"
                                                             : "\n</s>\n")
                                : i < 3 + 256
                                    ? absl::StrCat("<0x", absl::Hex(i - 3, absl::kZeroPad2), ">")
                                    : absl::StrCat(" t", i);
      w.Put<float>(-static_cast<float>(i));
      w.Put<int32_t>(static_cast<int32_t>(piece.size()));
      w.PutBytes(piece.data(), piece.size());
    }
    path = WriteScratchFile("tokenizer.bin", w.bytes());
    written = n;
  }
  return path;
}

}  // namespace
}  // namespace pinfer::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pinfer;
  Llama2cOptions options;
  options.tokenizer_path = fuzz::TokenizerFor(fuzz::DeclaredVocab(data, size));
  const std::string path = fuzz::WriteScratchFile("model.bin", {data, size});
  (void)LooksLikeLlama2c(path);
  absl::StatusOr<SourceModel> model = ReadLlama2c(path, options);
  if (!model.ok()) return fuzz::Rejected(model.status());
  fuzz::ExerciseSourceModel(*model);
  return 0;
}
