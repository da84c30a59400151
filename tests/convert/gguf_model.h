// Writes a SourceModel as a llama GGUF in llama.cpp's layout (key names, ne order, ffn_down in
// the [n_ff, n_embd] GGUF orientation), so tests can make GGUFs of real models at any dtype, and
// so tests/data/gguf can be regenerated (make_test_gguf).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tools/convert/source_model.h"

namespace pinfer::testing {

struct GgufModelOptions {
  // ggml_type of the 2-D weights: 0 F32, 1 F16, 2 Q4_0, 8 Q8_0, 30 BF16 (1-D tensors stay F32).
  uint32_t ggml_type = 0;
  std::string arch = "llama";  // "bamboo": PowerInfer's Bamboo architecture name
  // PowerInfer's sparse layout: "PWRI" magic, ffn_down_t [n_embd, n_ff] instead of ffn_down,
  // predictor tensors blk.N.fc1/fc2 and powerinfer.sparse_threshold.
  bool powerinfer = false;
};

// RoPE scaling (ModelConfig::rope_freq_factors) is written as llama.cpp writes it: one factor for
// every pair as rope.scaling.type linear, per-pair ones as the rope_freqs tensor.
std::vector<uint8_t> BuildLlamaGguf(SourceModel& model, const GgufModelOptions& options = {});

}  // namespace pinfer::testing
