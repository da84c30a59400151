// config.json of a HuggingFace llama-family checkpoint, mapped onto our hparams.
//
// Accepted "architectures" and what they mean for the FFN (keys as in the real repositories):
//   LlamaForCausalLM      meta-llama/Llama-2-*; SparseLLM/ReluLLaMA-7B/13B/70B:
//                         {"hidden_act": "relu", "model_type": "llama", "max_position_embeddings":
//                         2048, no rope_theta}: relu(gate)·up
//   MistralForCausalLM    mistralai/Mistral-7B-*: silu, with "sliding_window"
//   SparseLlamaForCausalLM  SparseLLM/prosparse-llama-2-7b/13b (model_type "sparsellama",
//                         custom code): {"hidden_act": "fatrelu", "hidden_act_param": 0.01}:
//                         gate zeroed below the threshold
//   BambooForCausalLM     PowerInfer/Bamboo-base-v0_1 (model_type "bamboo", Mistral-shaped,
//                         "sliding_window": 4096): {"hidden_act": "relu"} applied to gate AND up
//                         (dReLU; PowerInfer's llama.cpp builds its FFN with LLM_FFN_SYM for this
//                         architecture), i.e. our drelu
//   OPTForCausalLM        facebook/opt-125m ... opt-66b: architecture "opt" (model_config.h),
//                         activation_function relu; OPT-350m's post-norm and project_in/out are
//                         refused (hf_config.cc's ParseOptConfig lists the keys)
// hidden_act: silu/swish -> silu, relu -> relu (drelu for Bamboo), fatrelu -> fatrelu:
// hidden_act_param, relu2 -> relu2, gelu_pytorch_tanh/gelu -> gelu (the tanh form).
// Missing keys take the defaults of transformers' LlamaConfig/MistralConfig (rope_theta 10000,
// rms_norm_eps 1e-6, ...). rope_scaling of rope_type "llama3" (Llama 3.1+: factor,
// low_freq_factor, high_freq_factor, original_max_position_embeddings) or "linear" (factor) become
// ModelConfig::rope_freq_factors; other RoPE scalings, attention/MLP biases and pre-quantized
// checkpoints are rejected with a clear message rather than converted wrongly.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "runtime/model/model_config.h"

namespace pinfer {

struct HfConfig {
  ModelConfig config;  // vocab_size and tied_embeddings as config.json says; ffn_act = declared
  std::string architecture;     // "LlamaForCausalLM", ...
  Activation declared_ffn_act;  // what hidden_act means for this architecture
  std::string declared_by;      // "config.json hidden_act 'relu'"
  std::optional<int64_t> bos_token_id, eos_token_id, pad_token_id;
  std::vector<std::string> notes;
};

// `path` names config.json in errors.
absl::StatusOr<HfConfig> ParseHfConfig(const nlohmann::json& json, const std::string& path);

}  // namespace pinfer
