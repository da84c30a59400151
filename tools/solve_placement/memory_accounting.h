// GPU memory of the parts that are not read from model.pi's tensor index, as pi-place counts them.
// The hybrid runtime allocates within these figures (the plan records them).
//
// KV cache on the GPU: f16 K and V, `context` positions, per layer:
//   2 * context * kv_dim * 2 bytes.
// A decode step reads on average half of it (positions up to context / 2).
//
// Workspace: f32 activations for a forward pass of `batch` tokens (hidden state, residual, norm
// output, attention output, q, k, v, gate, up - which also holds the FFN output - and logits),
// plus one row of attention scores per head for decode (longer prompts are tiled):
//   4 * batch * (4 * dim + q_dim + 2 * kv_dim + 2 * n_ff + vocab) + 4 * n_heads * context.
//
// Predictor weights, when no model.predictor.pi says better: the low-rank MLP of
// pi-train-predictor (dim -> rank -> n_ff) with f16 weights and f32 biases:
//   2 * rank * (dim + n_ff) + 4 * (rank + n_ff) bytes per layer,
// with rank = clamp(dim / 4, 16, 1024) (1024 for Llama-7B and larger: an assumption of the
// order of the low-rank predictors of Deja Vu / PowerInfer, not a measured size).
#pragma once

#include <cstdint>

#include "runtime/model/model_config.h"

namespace pinfer {

uint64_t KvCacheBytesPerLayer(const ModelConfig& config, int64_t context);
uint64_t WorkspaceBytes(const ModelConfig& config, int64_t context, int64_t batch);
int64_t DefaultPredictorRank(const ModelConfig& config);
uint64_t EstimatedPredictorBytesPerLayer(const ModelConfig& config, int64_t rank);

}  // namespace pinfer
