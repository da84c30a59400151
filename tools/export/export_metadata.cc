#include "tools/export/export_metadata.h"

#include "absl/strings/str_cat.h"

namespace pinfer {

namespace {

// llama.cpp's falcon hparams (llama-model.cpp load_hparams; its converter writes the same keys and
// the "jploski" tensor_data_layout of attn_qkv).
GgufMetadata FalconGgufMetadata(const ModelConfig& c, const Vocabulary& v) {
  GgufMetadata m;
  AddGgufCommonHparams("falcon", c, m);
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
