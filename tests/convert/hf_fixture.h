// Builds small HuggingFace checkpoint directories for tests: random weights, but the real file
// layout (config.json with the keys of the real repositories, model.safetensors or shards with
// model.safetensors.index.json, a SentencePiece tokenizer.model trained like Llama's,
// tokenizer.json derived from it as HF's converter does, tokenizer_config.json).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace pinfer::testing {

enum class HfVariant {
  kLlama2,     // meta-llama/Llama-2: silu
  kReluLlama,  // SparseLLM/ReluLLaMA-7B: relu
  kProSparse,  // SparseLLM/prosparse-llama-2-7b: fatrelu 0.01, custom SparseLlamaForCausalLM
  kBamboo,     // PowerInfer/Bamboo-base-v0_1: relu on gate and up, GQA, sliding window
  kMistral,    // mistralai/Mistral-7B-v0.1: silu, GQA, sliding window
  kLlama3,     // meta-llama/Llama-3.1-8B: silu, GQA, rope_theta 500000, rope_scaling llama3
};

struct HfSpec {
  HfVariant variant = HfVariant::kLlama2;
  std::string dtype = "F32";  // safetensors dtype of the weights: F32, F16 or BF16
  int shards = 1;             // > 1: model-0000k-of-0000n.safetensors + index
  bool tokenizer_model = true;
  bool tokenizer_json = false;
  bool tied = false;
  int64_t dim = 64, n_ff = 96, n_layers = 2, n_heads = 4, n_kv_heads = 4;
  uint32_t seed = 1;
  // The standard deviation of the random projection weights. Real checkpoints' 0.02 leaves a tiny
  // model's attention almost uniform; the forward-pass reference tests use larger weights so that
  // positions (RoPE, masks) change the logits visibly.
  float weight_std = 0.02f;
  // Merged into config.json last (RFC 7386 merge patch: a null value removes the key), for the
  // tests of other hparams (rope_scaling, sliding_window, ...).
  nlohmann::json config_patch = nlohmann::json::object();
};

// One weight as written: HF name, shape, and its values as f32 (before encoding to the dtype).
struct HfWeight {
  std::vector<uint64_t> shape;
  std::vector<float> values;
};

struct HfModel {
  std::string dir;
  nlohmann::json config;
  std::map<std::string, HfWeight> weights;  // by HF tensor name
  int64_t vocab_size = 0;
};

// The trained tokenizer.model shared by all fixtures (trained once per process).
const std::string& TestTokenizerModel();
int64_t TestTokenizerSize();

HfModel WriteHfModel(const std::string& dir, const HfSpec& spec);

// Writes a safetensors file; `tensors` holds (name, dtype, shape, raw bytes).
struct RawTensor {
  std::string name;
  std::string dtype;
  std::vector<uint64_t> shape;
  std::vector<uint8_t> bytes;
};
void WriteSafetensors(const std::string& path, const std::vector<RawTensor>& tensors);

// f32 values encoded as a safetensors dtype (F32, F16, BF16).
std::vector<uint8_t> EncodeAs(const std::string& dtype, const std::vector<float>& values);

// tokenizer.json as HF's LlamaConverter writes it for a SentencePiece BPE model.
nlohmann::json TokenizerJsonFromModel(const std::string& model_path);

}  // namespace pinfer::testing
