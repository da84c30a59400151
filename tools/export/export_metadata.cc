#include "tools/export/export_metadata.h"

#include "absl/strings/str_cat.h"

namespace pinfer {

GgufMetadata GgufModelMetadata(const ModelConfig& c, const Vocabulary& v, bool powerinfer) {
  GgufMetadata m = LlamaGgufMetadata(c, v);
  m.SetString("general.description",
              absl::StrCat("exported by pinfer pi-export from a ", c.ffn_act.ToString(), " model",
                           powerinfer ? " (PowerInfer sparse GGUF with predictors)" : ""));
  return m;
}

}  // namespace pinfer
