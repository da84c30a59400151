// A test-only LibTorch reference of the forward pass of the HF model families pinfer converts,
// written from the published architectures (HF transformers' config semantics), independently of
// the runtime: the tests compare pinfer's logits with these (tests/reference/reference_test.cc).
//
// LibTorch's protobuf clashes with SentencePiece's, so nothing here links the pinfer runtime or
// the converter: only the safetensors parser (pinfer_convert_parsers) and nlohmann-json.
//
// The reference computes in double precision, so that its own rounding is negligible beside the
// f32 runtime's, and returns f32 logits.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace pinfer::reference {

// config.json and every tensor of the model's safetensors files (model.safetensors, or the
// shards model-*.safetensors), decoded from F32/F16/BF16 to double.
struct HfCheckpoint {
  nlohmann::json config;
  std::map<std::string, torch::Tensor> tensors;
  // The tensor `name`; throws std::runtime_error naming it when the checkpoint lacks it.
  const torch::Tensor& at(const std::string& name) const;
};

// Throws std::runtime_error (naming the file) on anything unreadable.
HfCheckpoint LoadHfCheckpoint(const std::string& dir);

// A family's forward pass: the logits of every position of `tokens` (positions 0..n-1), [n, vocab]
// f32. Throws std::runtime_error for a config it does not implement.
using FamilyForward = torch::Tensor (*)(const HfCheckpoint&, const std::vector<int64_t>& tokens);

// Llama 1/2/3, Mistral: RMSNorm, RoPE in HF's rotate_half layout (rope_theta, rope_scaling
// "llama3" or "linear"), grouped-query attention, Mistral's sliding_window, a SiLU- (or ReLU-)
// gated MLP, a tied or separate head (llama_reference.cc).
torch::Tensor LlamaForward(const HfCheckpoint& checkpoint, const std::vector<int64_t>& tokens);

// OPT (OPTForCausalLM): learned positions offset by 2, pre-norm LayerNorm, biased projections,
// fc1 -> ReLU -> fc2 (opt_reference.cc).
torch::Tensor OptForward(const HfCheckpoint& checkpoint, const std::vector<int64_t>& tokens);
// Falcon (FalconForCausalLM): parallel attention and MLP, the fused query_key_value of the 7B and
// 40B layouts, rotate_half RoPE, exact GELU (falcon_reference.cc).
torch::Tensor FalconForward(const HfCheckpoint& checkpoint, const std::vector<int64_t>& tokens);

// The registry: config.json "architectures"[0] -> its forward (families.cc, one line a family).
struct Family {
  const char* architecture;
  FamilyForward forward;
};
std::span<const Family> Families();
// The forward for `architecture`, or null.
FamilyForward FindFamily(const std::string& architecture);

}  // namespace pinfer::reference
