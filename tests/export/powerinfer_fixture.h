// PowerInfer GGUF fixtures for the interop tests, written from PowerInfer's layouts (its
// gguf-py constants, convert.py and llama.cpp's loader), since its real files cannot be
// downloaded here: the "PWRI" magic, llama hparams and tokenizer, ffn_down_t ne {dim, n_ff} in
// place of ffn_down, per layer a predictor fc1 ne {dim, rank} and fc2 ne {rank, n_ff} (no biases),
// and powerinfer.sparse_threshold.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "format/dtype.h"
#include "tools/convert/gguf_file.h"
#include "tools/convert/source_model.h"

namespace pinfer::testing {

struct PowerInferFixture {
  int64_t rank = 32;
  DType fc_dtype = DType::kF16;           // what PowerInfer's convert.py writes
  std::optional<float> threshold = 0.0f;  // nullopt: no powerinfer.sparse_threshold key
  int64_t fc1_dim = 0;                    // != 0: a wrong fc1 width (bad input)
  int64_t predictor_layers = -1;          // -1: every layer
  uint64_t seed = 1;                      // of the predictor's random weights
};

// Writes the model's weights (as read by tools/convert) and a seeded random predictor to `path`
// with the project's GGUF writer (PowerInfer's magic, LlamaGgufMetadata's keys); failures are
// test failures.
void WritePowerInferGguf(SourceModel& model, const PowerInferFixture& fixture,
                         const std::string& path);

// A 2-D GGUF tensor decoded to f32, row-major [ne[1], ne[0]].
std::vector<float> DecodeGgufTensor(const GgufFile& gguf, const std::string& name);

}  // namespace pinfer::testing
