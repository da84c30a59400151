// Reads a GGUF (v2/v3) model — llama.cpp's llama or falcon, or PowerInfer's sparse llama, bamboo,
// ReluFalcon and OPT — as a SourceModel. The tensor names of each architecture and what they are
// in model.pi: tools/convert/gguf_layouts.h.
//
// - Tensors F32, F16, BF16, Q8_0 and Q4_0 (the GGML blocks are ours bit for bit: a tensor kept at
//   its dtype is copied, not re-quantized). Other GGML types are rejected by name.
// - GGUF's llama q/k rows are already in the interleaved RoPE convention (llama.cpp's converter
//   permutes HF checkpoints), so they are taken as they are. Falcon's are not (llama.cpp rotates
//   falcon NEOX-style, on half-split pairs): its fused attn_qkv is split into attn_q/k/v with the
//   pairs interleaved, whole rows moved, so even quantized rows stay lossless.
// - ffn_down [n_embd, n_ff] is transposed to our ffn_down_t; for a quantized ffn_down that means
//   decode, transpose, encode again: one extra rounding of that tensor (PowerInfer's converter
//   does the same). PowerInfer GGUFs already store ffn_down_t, which is copied.
// - Hparams from "{arch}.*" metadata (falcon and opt: LayerNorm's layer_norm_epsilon; PowerInfer's
//   OPT files have none and get OPT's 1e-5, and their context is position_embd's rows minus the
//   offset of 2), the tokenizer from "tokenizer.ggml.*" (SentencePiece "llama" and byte-level BPE
//   "gpt2" vocabularies: tokens, token_type, merges, pre, bos/eos ids, add_bos_token, with
//   llama.cpp's defaults) and tokenizer.chat_template.
// - The activation: PowerInfer's "bamboo" architecture is drelu (ReLU on gate and up); a
//   PowerInfer sparse llama or falcon ("PWRI" magic, ffn_down_t or predictor tensors) and OPT are
//   relu; llama.cpp's falcon is Falcon's exact (erf) GELU, which llama.cpp itself approximates
//   with tanh. A plain llama GGUF does not record the activation (llama.cpp assumes SiLU), so
//   flags declare it.
// - PowerInfer's predictor tensors (fc1/fc2) are left out with a note: pi-train-predictor
//   --import reads those of a llama; those of OPT and ReluFalcon read the residual before a
//   LayerNorm, which pinfer's predictor (on the normalized input) cannot reproduce.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/convert/activation_choice.h"
#include "tools/convert/source_model.h"

namespace pinfer {

absl::StatusOr<SourceModel> ReadGguf(const std::string& path, const ActivationFlags& flags);

// The tokenizer of any GGUF, whatever its architecture and tensors: llama.cpp's vocabulary-only
// files (models/ggml-vocab-*.gguf) included. `notes` as in SourceModel.
absl::StatusOr<Vocabulary> ReadGgufVocabulary(const std::string& path,
                                              std::vector<std::string>& notes);

}  // namespace pinfer
