// Falcon and OPT GGUFs for the import tests, written byte by byte (GgufBuilder) from the tiny HF
// fixtures' weights (tests/model/falcon_fixture.h, opt_fixture.h) the way the foreign converters
// write them, without any pinfer conversion code, so that our importer is checked against the
// layouts as llama.cpp and PowerInfer define them and not against our own exporter:
//   - llama.cpp's falcon (convert_hf_to_gguf.py FalconModel at c392e5094): query_key_value viewed
//     as [n_kv, n_heads/n_kv + 2, head_dim, dim] and regrouped as all q, then all k, then all v
//     heads, rows otherwise untouched (llama.cpp rotates them NEOX-style); gguf-py's names
//     (input_layernorm / ln_mlp -> attn_norm, ln_attn -> attn_norm_2, dense_h_to_4h -> ffn_up,
//     dense_4h_to_h -> ffn_down); its keys (falcon.*, layer_norm_epsilon, head_count_kv).
//   - PowerInfer's ReluFalcon and OPT (convert-hf-to-powerinfer-gguf.py at d3ebd7c): magic
//     "PWRI", ffn_down renamed ffn_down_t and transposed (its bias renamed with it), per layer a
//     predictor fc1 [rank, dim] / fc2 [n_ff, rank] of seeded random values, powerinfer.sparse_
//     threshold; OPT's keys (context_length 2 + positions, no layer_norm_epsilon, no
//     head_count_kv), its names (fc1 -> ffn_up, fc2 -> ffn_down, embed_positions -> position_embd),
//     no output.weight (tied).
// Every tensor is f32, so a conversion of the GGUF equals the HF directory's bit for bit.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/model/vocabulary.h"
#include "tests/convert/gguf_builder.h"
#include "tests/model/falcon_fixture.h"
#include "tests/model/opt_fixture.h"

namespace pinfer::testing {

struct GgufFamilyOptions {
  bool powerinfer = false;  // PowerInfer's sparse layout (falcon: ReluFalcon)
  int64_t rank = 16;        // of the predictor
  // Called before Build(): more keys or tensors (bad input).
  std::function<void(GgufBuilder&)> extra;
  // GGUF tensor and key names left out (bad input).
  std::vector<std::string> drop;
};

// The vocabulary of a HF fixture directory as pinfer reads it (tokens, merges and special ids for
// the GGUF's tokenizer keys; the tokenizer is not what these files test).
Vocabulary HfVocabulary(const std::string& dir);

std::vector<uint8_t> FalconGguf(const FalconModel& hf, const GgufFamilyOptions& options = {});
std::vector<uint8_t> OptPowerInferGguf(const OptModel& hf, const GgufFamilyOptions& options = {});

}  // namespace pinfer::testing
