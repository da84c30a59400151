#include "tools/export/export_metadata.h"

#include "absl/strings/str_cat.h"

namespace pinfer {

GgufMetadata GgufModelMetadata(const ModelConfig& c, const Vocabulary& v, bool powerinfer) {
  GgufMetadata m;
  m.SetString("general.architecture", "llama");
  m.SetString("general.name", c.name);
  m.SetString("general.description",
              absl::StrCat("exported by pinfer pi-export from a ", c.ffn_act.ToString(), " model",
                           powerinfer ? " (PowerInfer sparse GGUF with predictors)" : ""));
  m.SetUint32("llama.context_length", static_cast<uint32_t>(c.context_length));
  m.SetUint32("llama.embedding_length", static_cast<uint32_t>(c.dim));
  m.SetUint32("llama.block_count", static_cast<uint32_t>(c.n_layers));
  m.SetUint32("llama.feed_forward_length", static_cast<uint32_t>(c.n_ff));
  m.SetUint32("llama.rope.dimension_count", static_cast<uint32_t>(c.head_dim));
  m.SetUint32("llama.attention.head_count", static_cast<uint32_t>(c.n_heads));
  m.SetUint32("llama.attention.head_count_kv", static_cast<uint32_t>(c.n_kv_heads));
  if (c.head_dim * c.n_heads != c.dim) {
    m.SetUint32("llama.attention.key_length", static_cast<uint32_t>(c.head_dim));
    m.SetUint32("llama.attention.value_length", static_cast<uint32_t>(c.head_dim));
  }
  m.SetFloat32("llama.attention.layer_norm_rms_epsilon", static_cast<float>(c.rms_eps));
  m.SetFloat32("llama.rope.freq_base", static_cast<float>(c.rope_theta));
  m.SetUint32("llama.vocab_size", static_cast<uint32_t>(c.vocab_size));
  m.SetString("tokenizer.ggml.model", "llama");
  m.SetStringArray("tokenizer.ggml.tokens", v.pieces);
  m.SetFloat32Array("tokenizer.ggml.scores", v.scores);
  m.SetInt32Array("tokenizer.ggml.token_type", v.types);
  m.SetUint32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(v.bos_id));
  m.SetUint32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(v.eos_id));
  m.SetUint32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(v.unk_id));
  if (v.pad_id >= 0) {
    m.SetUint32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(v.pad_id));
  }
  m.SetBool("tokenizer.ggml.add_bos_token", v.add_bos);
  m.SetBool("tokenizer.ggml.add_eos_token", false);
  m.SetBool("tokenizer.ggml.add_space_prefix", v.add_space_prefix);
  if (!v.chat_template.empty()) m.SetString("tokenizer.chat_template", v.chat_template);
  return m;
}

}  // namespace pinfer
