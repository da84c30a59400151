// Tensor names inside model.pi (GGUF-like, so that they read familiarly). Shapes are
// [rows, cols] with cols contiguous; quantized blocks run along cols.
//   token_embd            [vocab, dim]
//   output_norm           [dim]                 f32
//   output                [vocab, dim]          absent when tied_embeddings
//   blk.N.attn_norm       [dim]                 f32
//   blk.N.attn_q          [n_heads*head_dim, dim]
//   blk.N.attn_k          [n_kv_heads*head_dim, dim]
//   blk.N.attn_v          [n_kv_heads*head_dim, dim]
//   blk.N.attn_output     [dim, n_heads*head_dim]
//   blk.N.ffn_norm        [dim]                 f32
//   blk.N.ffn_gate        [n_ff, dim]           neuron-major
//   blk.N.ffn_up          [n_ff, dim]           neuron-major
//   blk.N.ffn_down_t      [n_ff, dim]           down projection, transposed: row i = neuron i
// Per architecture (model_config.h):
//   ffn_gated false (opt): no ffn_up; ffn_gate is fc1 (a neuron is act(fc1_i·x + b_i))
//   norm layer (opt): a bias beside each norm weight, f32 [dim]:
//   output_norm_b, blk.N.attn_norm_b, blk.N.ffn_norm_b
//   positions learned (opt):
//   position_embd         [context_length + position_offset, dim]
//   biases (opt), f32:
//   blk.N.attn_q_b        [n_heads*head_dim]
//   blk.N.attn_k_b        [n_kv_heads*head_dim]
//   blk.N.attn_v_b        [n_kv_heads*head_dim]
//   blk.N.attn_output_b   [dim]
//   blk.N.ffn_gate_b      [n_ff]                fc1's bias: entry i = neuron i
//   blk.N.ffn_down_b      [dim]                 fc2's bias, added once per token
#pragma once

#include <string>

#include "absl/strings/str_cat.h"

namespace pinfer::tensor_names {

inline constexpr char kTokenEmbedding[] = "token_embd";
inline constexpr char kOutputNorm[] = "output_norm";
inline constexpr char kOutput[] = "output";
inline constexpr char kOutputNormBias[] = "output_norm_b";
inline constexpr char kPositionEmbedding[] = "position_embd";

inline std::string Layer(int layer, const char* suffix) {
  return absl::StrCat("blk.", layer, ".", suffix);
}
inline std::string AttnNorm(int layer) { return Layer(layer, "attn_norm"); }
inline std::string AttnQ(int layer) { return Layer(layer, "attn_q"); }
inline std::string AttnK(int layer) { return Layer(layer, "attn_k"); }
inline std::string AttnV(int layer) { return Layer(layer, "attn_v"); }
inline std::string AttnOutput(int layer) { return Layer(layer, "attn_output"); }
inline std::string FfnNorm(int layer) { return Layer(layer, "ffn_norm"); }
inline std::string FfnGate(int layer) { return Layer(layer, "ffn_gate"); }
inline std::string FfnUp(int layer) { return Layer(layer, "ffn_up"); }
inline std::string FfnDownT(int layer) { return Layer(layer, "ffn_down_t"); }
inline std::string AttnNormBias(int layer) { return Layer(layer, "attn_norm_b"); }
inline std::string FfnNormBias(int layer) { return Layer(layer, "ffn_norm_b"); }
inline std::string AttnQBias(int layer) { return Layer(layer, "attn_q_b"); }
inline std::string AttnKBias(int layer) { return Layer(layer, "attn_k_b"); }
inline std::string AttnVBias(int layer) { return Layer(layer, "attn_v_b"); }
inline std::string AttnOutputBias(int layer) { return Layer(layer, "attn_output_b"); }
inline std::string FfnGateBias(int layer) { return Layer(layer, "ffn_gate_b"); }
inline std::string FfnDownBias(int layer) { return Layer(layer, "ffn_down_b"); }

}  // namespace pinfer::tensor_names
