// The tensor names of each GGUF architecture pinfer reads, and what each is in our model.pi
// (runtime/model/tensor_names.h), as llama.cpp (c392e5094) and PowerInfer (d3ebd7c) name them:
//
//   llama, bamboo  llama.cpp's llama; PowerInfer's sparse llama and Bamboo add ffn_down_t and the
//                  predictor fc1/fc2. Every weight is "NAME.weight", under our name.
//   falcon         llama.cpp's falcon (convert_hf_to_gguf.py FalconModel, llama-model.cpp):
//                  attn_norm = Falcon-7B's input_layernorm or Falcon-40B's ln_mlp (the norm the
//                  FFN reads: our ffn_norm; the attention's too when the layer has no attn_norm_2),
//                  attn_norm_2 = the 40B's ln_attn (our attn_norm), LayerNorm biases ".bias",
//                  attn_qkv = query_key_value with its kv groups regrouped as all query heads,
//                  then all key heads, then all value heads ("jploski" layout), their RoPE pairs
//                  still half-split (llama.cpp rotates falcon NEOX-style); ffn_up (our ffn_gate of
//                  the gate-less FFN), ffn_down. PowerInfer's ReluFalcon adds ffn_down_t, fc1, fc2.
//   opt            PowerInfer's OPT (llama.cpp has none): position_embd (2 + context rows),
//                  LayerNorms and every projection with ".bias", ffn_up = fc1 (our ffn_gate),
//                  ffn_down or ffn_down_t = fc2 (its bias "ffn_down(_t).bias": our ffn_down_b),
//                  fc1/fc2 the predictor; the classifier is token_embd.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pinfer {

// How a GGUF tensor becomes ours.
enum class GgufRole {
  kDirect,      // our tensor, as stored
  kTransposed,  // ffn_down [dim, n_ff] -> our ffn_down_t [n_ff, dim]
  kFusedQkv,    // falcon's attn_qkv: the rows of our attn_q, attn_k and attn_v
  kPredictor,   // PowerInfer's fc1/fc2 (imported by pi-train-predictor --import, or not at all)
  kRopeFreqs,   // llama's rope_freqs: carried as ModelConfig::rope_freq_factors
  kIgnored,     // precomputed RoPE tables
};

struct GgufMapping {
  std::string our_name;  // empty for kFusedQkv (three tensors), kPredictor, kRopeFreqs, kIgnored
  GgufRole role = GgufRole::kDirect;
  int layer = -1;  // the layer of a blk.N tensor
};

// The architectures of general.architecture that pinfer reads.
bool IsKnownGgufArchitecture(const std::string& arch);
inline constexpr char kKnownGgufArchitectures[] = "llama, falcon, and PowerInfer's bamboo and opt";

// What `gguf_name` is in an `n_layers` model of `arch`; nullopt: not a tensor of it.
std::optional<GgufMapping> MapGgufTensor(const std::string& arch, const std::string& gguf_name,
                                         int64_t n_layers);

// The GGUF tensors every `n_layers` model of `arch` has (ffn_down/ffn_down_t, the classifier and
// the 40B's attn_norm_2 are optional), so that a missing one is named as the file names it.
std::vector<std::string> RequiredGgufTensors(const std::string& arch, int64_t n_layers);

}  // namespace pinfer
