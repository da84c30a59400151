// The GGUF metadata of an exported model: the llama hparams and tokenizer keys of
// LlamaGgufMetadata (tools/convert/gguf_writer.h), from model.pi's ModelConfig and Vocabulary,
// and a description saying that pi-export wrote it.
#pragma once

#include "runtime/model/model_config.h"
#include "runtime/model/vocabulary.h"
#include "tools/convert/gguf_writer.h"

namespace pinfer {

// `powerinfer`: also describes the file as PowerInfer's sparse variant (general.description).
GgufMetadata GgufModelMetadata(const ModelConfig& config, const Vocabulary& vocabulary,
                               bool powerinfer);

}  // namespace pinfer
