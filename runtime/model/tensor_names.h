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
#pragma once

#include <string>

#include "absl/strings/str_cat.h"

namespace pinfer::tensor_names {

inline constexpr char kTokenEmbedding[] = "token_embd";
inline constexpr char kOutputNorm[] = "output_norm";
inline constexpr char kOutput[] = "output";

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

}  // namespace pinfer::tensor_names
