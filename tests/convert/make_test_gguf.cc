// Writes a model as an F32 llama GGUF (tests/data/gguf/README.md says how the committed GGUFs were
// made from it with llama.cpp's llama-quantize). Usage:
//   make_test_gguf MODEL_Q80.BIN TOKENIZER.BIN OUT.gguf
#include <cstdio>

#include "tests/convert/gguf_model.h"
#include "tests/convert/test_util.h"
#include "tools/convert/llama2c_source.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: make_test_gguf MODEL.bin TOKENIZER.bin OUT.gguf\n");
    return 2;
  }
  pinfer::Llama2cOptions options;
  options.tokenizer_path = argv[2];
  absl::StatusOr<pinfer::SourceModel> model = pinfer::ReadLlama2c(argv[1], options);
  if (!model.ok()) {
    std::fprintf(stderr, "make_test_gguf: error: %s\n",
                 std::string(model.status().message()).c_str());
    return 1;
  }
  pinfer::testing::WriteFileBytes(argv[3], pinfer::testing::BuildLlamaGguf(*model));
  return 0;
}
