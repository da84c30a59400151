// pi-train-predictor --import POWERINFER.gguf: PowerInfer's own trained predictors (the tensors
// blk.N.fc1 and blk.N.fc2 of a PowerInfer GGUF) written as model.predictor.pi for the model.pi that
// pi-convert made from the same GGUF, so that pi-run runs sparse with them without any training.
//
// PowerInfer's predictor (its llama.cpp, llm_build_ffn_sparse, and ggml.c's sparse mat-muls):
//   z = fc2 · relu(fc1 · h),  fc1 [rank, dim], fc2 [n_ff, rank] (GGUF ne {dim, rank}, {rank,
//   n_ff}),
// no biases, neuron i active unless z_i < t, with one global t: the GGUF key
// powerinfer.sparse_threshold (default 0), overridden by the environment variable
// LLAMA_SPARSE_PRED_THRESHOLD. Its input h is the layer's residual stream BEFORE ffn_norm (llama's
// "ffn_inp"), whereas ours is x = norm(h) = h / rms(h) ⊙ g (g: the layer's ffn_norm weight).
// Folding 1/g into fc1, W1 = fc1 · diag(1/g), gives
//   W2 · relu(W1 · x) = fc2 · relu(fc1 · h) / rms(h)          (relu(c·v) = c·relu(v) for c > 0)
// so with W2 = fc2, zero biases and logit_threshold = t, our decision z >= t is PowerInfer's
// exactly when t = 0 (its default, and what every released PowerInfer model uses); for t != 0 ours
// compares z_PI against t·rms(h), which the import reports as approximate.
//
// The weights are stored in f32 by default: fc1/g is then within an f32 rounding of the exact
// quotient, and pi-export's fc1 = W1 · diag(g) rounds back to the original f16 bits.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "format/dtype.h"
#include "nlohmann/json.hpp"

namespace pinfer {

struct ImportPredictorOptions {
  std::string model_path;   // model.pi, converted by pi-convert from gguf_path
  std::string gguf_path;    // the PowerInfer GGUF
  std::string output_path;  // "": beside the model (model.predictor.pi)
  DType dtype = DType::kF32;
  // LLAMA_SPARSE_PRED_THRESHOLD when set (it replaces the file's powerinfer.sparse_threshold).
  std::optional<float> threshold_override;
  std::string command_line;  // provenance
};

struct ImportPredictorReport {
  std::string model_path;
  std::string gguf_path;
  std::string output_path;
  std::string model_digest;
  std::string dtype;
  float threshold = 0;
  std::string threshold_source;  // "powerinfer.sparse_threshold", "LLAMA_SPARSE_PRED_THRESHOLD" or
                                 // "default"
  bool exact = true;             // threshold == 0: the decisions equal PowerInfer's
  std::vector<int64_t> ranks;    // per layer
  uint64_t total_bytes = 0;

  std::string ToText() const;
  nlohmann::json ToJson() const;
};

absl::StatusOr<ImportPredictorReport> ImportPowerInferPredictor(
    const ImportPredictorOptions& options);

}  // namespace pinfer
