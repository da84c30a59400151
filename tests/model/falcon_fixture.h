// Tiny random-weight FalconForCausalLM checkpoints for tests (config.json with transformers'
// FalconConfig keys, model.safetensors with Falcon's names and its fused query_key_value, the
// falcon byte-level BPE tokenizer.json of tests/data/bpe/falcon), and an independent f64 scalar
// reference of Falcon's forward pass written from the published architecture (transformers'
// modeling_falcon): the fused QKV split per layout (new_decoder_architecture: kv groups of
// n_heads/n_kv queries, a key and a value; multi_query: every query, one key, one value), rotary
// embeddings on the half-split pairs (rotate_half), causal softmax attention, the attention and
// the MLP in parallel on one LayerNorm (7B) or two (40B: ln_attn, ln_mlp), exact (erf) GELU,
// final LayerNorm, the tied or separate head. No pinfer code.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace pinfer::testing {

struct FalconSpec {
  int64_t dim = 64, n_layers = 2, n_heads = 4;
  int64_t n_kv_heads = 1;  // 1: multi_query (7B); new_decoder_architecture: any divisor
  bool new_decoder_architecture = false;  // 40B: ln_attn + ln_mlp, grouped KV
  int64_t vocab = 1264;
  int64_t positions = 64;
  bool tied = true;
  double rope_theta = 10000.0;
  uint32_t seed = 5;
};

struct FalconModel {
  std::string dir;
  FalconSpec spec;
  nlohmann::json config;
  std::map<std::string, std::vector<float>> weights;  // by HF name
};

// The two Falcon layouts the tests use: the fixture's default (Falcon-7B: multi-query, one
// LayerNorm, tied head) and Falcon-40B's (new_decoder_architecture, 2 key/value heads, ln_attn and
// ln_mlp, a separate head, rope_theta 500000).
inline FalconSpec Falcon7BLayout() { return {}; }
inline FalconSpec Falcon40BLayout() {
  FalconSpec s;
  s.new_decoder_architecture = true;
  s.n_kv_heads = 2;
  s.tied = false;
  s.rope_theta = 500000.0;
  s.seed = 8;
  return s;
}

FalconModel WriteFalconModel(const std::string& dir, const FalconSpec& spec = {});

// The reference logits [tokens.size(), vocab] of the sequence from position 0.
std::vector<double> FalconReferenceLogits(const FalconModel& model,
                                          const std::vector<int32_t>& tokens);
std::vector<int32_t> FalconReferenceGreedy(const FalconModel& model, std::vector<int32_t> prompt,
                                           int steps);

}  // namespace pinfer::testing
