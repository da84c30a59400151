// Tiny random-weight OPTForCausalLM checkpoints for tests (the real layout: config.json with
// transformers' OPTConfig keys, model.safetensors with OPT's tensor names, the GPT-2-style
// byte-level BPE tokenizer.json of tests/data/bpe/gpt-2), and an independent scalar reference of
// OPT's forward pass over those weights, written from the published architecture
// (transformers' modeling_opt: learned positions offset by 2, pre-norm LayerNorm, q scaled by
// head_dim^-0.5, causal softmax attention, fc1 -> ReLU -> fc2, final LayerNorm, tied head), in
// f64 and without any pinfer code, for the runtime's logits to be compared against.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace pinfer::testing {

struct OptSpec {
  int64_t dim = 64, n_ff = 256, n_layers = 2, n_heads = 4;
  int64_t positions = 64;  // max_position_embeddings
  int64_t vocab = 1264;    // > the tokenizer's 1257 pieces, as OPT's 50272 > 50265
  bool tied = true;
  std::string dtype = "F32";  // of the safetensors weights (the reference uses the f32 values)
  std::string prefix = "model.decoder.";  // or "decoder." (the original facebook/opt-* files)
  uint32_t seed = 3;
};

struct OptModel {
  std::string dir;
  OptSpec spec;
  nlohmann::json config;
  std::map<std::string, std::vector<float>> weights;  // by HF name without the prefix
  int64_t bos = 0;                                    // the tokenizer's <|endoftext|>
};

// Writes config.json, model.safetensors and tokenizer.json into `dir` (created).
OptModel WriteOptModel(const std::string& dir, const OptSpec& spec = {});

// The reference logits [tokens.size(), vocab] of the whole sequence from position 0.
std::vector<double> OptReferenceLogits(const OptModel& model, const std::vector<int32_t>& tokens);

// Greedy continuation of `prompt` by the reference: `steps` argmax tokens.
std::vector<int32_t> OptReferenceGreedy(const OptModel& model, std::vector<int32_t> prompt,
                                        int steps);

}  // namespace pinfer::testing
