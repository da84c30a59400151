// libFuzzer target: the GGUF reader (tools/convert/gguf_file.h). Any input must either be rejected
// with a status or yield tensors whose data lies inside the input.
#include <cstddef>
#include <cstdint>

#include "tools/convert/gguf_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::StatusOr<pinfer::GgufFile> file = pinfer::GgufFile::Parse({data, size}, "fuzz.gguf");
  if (!file.ok()) return 0;
  volatile uint8_t sink = 0;
  for (const pinfer::GgufTensorInfo& t : file->tensors()) {
    std::span<const uint8_t> bytes = file->TensorData(t);
    if (!bytes.empty()) sink = sink + bytes.front() + bytes.back();
  }
  for (const char* key : {"general.architecture", "llama.block_count", "tokenizer.ggml.tokens",
                          "tokenizer.ggml.scores", "tokenizer.ggml.token_type"}) {
    (void)file->GetString(key);
    (void)file->GetUint(key);
    (void)file->GetFloat(key);
    (void)file->GetStringArray(key);
    (void)file->GetFloatArray(key);
    (void)file->GetIntArray(key);
  }
  return 0;
}
