// Reads a HuggingFace checkpoint directory as a SourceModel: config.json (hf_config.h), the
// weights from model.safetensors or the shards model.safetensors.index.json lists (F32, F16 or
// BF16, mapped, never copied into memory), and the tokenizer (hf_tokenizer.h).
//
// Tensor names: model.embed_tokens, model.layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj,
// post_attention_layernorm, mlp.{gate,up,down}_proj}, model.norm, lm_head (all ".weight").
// q_proj/k_proj rows are permuted from HF's half-split RoPE pairs to our interleaved ones (a row
// permutation: bit-exact at the source dtype); down_proj [dim, n_ff] is transposed to our
// neuron-major ffn_down_t [n_ff, dim].
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "tools/convert/activation_choice.h"
#include "tools/convert/source_model.h"

namespace pinfer {

// `tokenizer_path` (optional) overrides the directory's tokenizer files.
absl::StatusOr<SourceModel> ReadHfDirectory(const std::string& dir,
                                            const std::string& tokenizer_path,
                                            const ActivationFlags& flags);

}  // namespace pinfer
