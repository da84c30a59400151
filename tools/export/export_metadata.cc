#include "tools/export/export_metadata.h"

#include "absl/strings/str_cat.h"

namespace pinfer {

namespace {

// llama.cpp's falcon hparams (llama-model.cpp load_hparams; its converter writes the same keys and
// the "jploski" tensor_data_layout of attn_qkv).
GgufMetadata FalconGgufMetadata(const ModelConfig& c, const Vocabulary& v) {
  GgufMetadata m;
  m.SetString("general.architecture", "falcon");
  m.SetString("general.name", c.name);
  m.SetUint32("falcon.context_length", static_cast<uint32_t>(c.context_length));
  m.SetUint32("falcon.embedding_length", static_cast<uint32_t>(c.dim));
  m.SetUint32("falcon.block_count", static_cast<uint32_t>(c.n_layers));
  m.SetUint32("falcon.feed_forward_length", static_cast<uint32_t>(c.n_ff));
  m.SetUint32("falcon.attention.head_count", static_cast<uint32_t>(c.n_heads));
  m.SetUint32("falcon.attention.head_count_kv", static_cast<uint32_t>(c.n_kv_heads));
  m.SetFloat32("falcon.attention.layer_norm_epsilon", static_cast<float>(c.rms_eps));
  m.SetFloat32("falcon.rope.freq_base", static_cast<float>(c.rope_theta));
  m.SetString("falcon.tensor_data_layout", "jploski");
  AddGgufTokenizer(v, m);
  return m;
}

}  // namespace

GgufMetadata GgufModelMetadata(const ModelConfig& c, const Vocabulary& v, bool powerinfer) {
  GgufMetadata m = c.architecture == "falcon" ? FalconGgufMetadata(c, v) : LlamaGgufMetadata(c, v);
  m.SetString("general.description",
              absl::StrCat("exported by pinfer pi-export from a ", c.ffn_act.ToString(), " model",
                           powerinfer ? " (PowerInfer sparse GGUF with predictors)" : ""));
  return m;
}

}  // namespace pinfer
