// A model read from a foreign format (llama2.c, GGUF, HF safetensors), already mapped onto our
// conventions: tensor names and shapes of runtime/model/tensor_names.h (neuron-major FFN, down
// transposed, interleaved RoPE), hparams and vocabulary. Each reader produces one; the converter
// turns any of them into model.pi without knowing where it came from.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "format/dtype.h"
#include "format/mapped_file.h"
#include "runtime/model/model_config.h"
#include "runtime/model/vocabulary.h"

namespace pinfer {

struct SourceTensor {
  std::string name;                  // our name (tensor_names.h)
  std::vector<uint64_t> shape;       // our layout: [rows, cols] or [n]
  DType native_dtype = DType::kF32;  // what the source stores: the default output dtype
  // Decodes rows [first, first + count) to f32 (count * cols values). Required.
  std::function<absl::Status(int64_t first, int64_t count, float* out)> read_rows;
  // Optional: rows [first, first + count) exactly as stored in native_dtype, already in our
  // layout (count * RowBytes(native_dtype, cols) bytes), for lossless copies (GGUF q8_0/q4_0
  // blocks, f16/bf16 safetensors). Null when only a decode can produce our layout (a transposed
  // quantized matrix, llama2.c's own Q8_0 groups).
  std::function<absl::Status(int64_t first, int64_t count, std::span<uint8_t> out)> read_native;

  int64_t rows() const;
  int64_t cols() const { return static_cast<int64_t>(shape.back()); }
};

struct SourceModel {
  std::string format;                     // "llama2.c v0", "GGUF v3", "HF safetensors", ...
  std::vector<std::string> source_files;  // digested into provenance
  ModelConfig config;
  Vocabulary vocabulary;
  std::vector<SourceTensor> tensors;
  // Things the user should know that are not errors (ignored predictor tensors, an activation
  // flag overriding what the source says, ...). The tool prints them; the library never does.
  std::vector<std::string> notes;
  // Mappings and buffers the read functions refer to.
  std::vector<std::shared_ptr<void>> keep_alive;
};

}  // namespace pinfer
