// The GGUF metadata of an exported model: llama.cpp's llama hparams and its SentencePiece
// tokenizer keys, from model.pi's ModelConfig and Vocabulary (what tools/convert/gguf_source.cc
// reads back).
#pragma once

#include "runtime/model/model_config.h"
#include "runtime/model/vocabulary.h"
#include "tools/convert/gguf_writer.h"

namespace pinfer {

// `powerinfer`: also describes the file as PowerInfer's sparse variant (general.description).
GgufMetadata GgufModelMetadata(const ModelConfig& config, const Vocabulary& vocabulary,
                               bool powerinfer);

}  // namespace pinfer
