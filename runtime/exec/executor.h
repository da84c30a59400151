// The Llama-family forward pass on the CPU, split into what is shared and what is per sequence.
//
//   Model     (runtime/model)  the mapped weights, read-only; one per process.
//   Executor  what runs a layer: the model, the batch size for prompt processing and, per layer, an
//             FfnStrategy (ffn.h). Dense by default; the sparse CPU FFN and the hybrid GPU/CPU FFN
//             replace it layer by layer. Shared by all sessions.
//   Session   one sequence: its KV cache, scratch buffers, position, the tokens evaluated so far,
//             byte/time accounting and an optional ForwardObserver. pi-server runs N sessions over
//             one Executor; perplexity resets the session between chunks.
//
// A layer, for a batch of n tokens at positions [pos0, pos0 + n):
//   xa = norm_act(rmsnorm(x) · attn_norm)            norm_act: none, or shifted ReLU (ReLU models)
//   q, k, v = Wq·xa, Wk·xa, Wv·xa; RoPE on q and k (interleaved pairs); k, v → KV cache rows
//   x += Wo · attention(q, cache[0, pos0 + n))       causal, grouped-query
//   xf = norm_act(rmsnorm(x) · ffn_norm)
//   x += FFN(xf)                                      the layer's FfnStrategy; observer sees xf, a
// then logits = output · rmsnorm(x) · output_norm (no norm activation on the final norm).
// Prompts are evaluated in batches of up to batch_size tokens (MatMul kernels), decode one token at
// a time (the same path with n = 1, where the kernels are matrix-vector products).
//
// Threads: the kernels parallelise inside each call (OpenMP, cpu::SetThreads), so forward passes
// run one at a time per process; sessions hold state, not threads.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "runtime/exec/ffn.h"
#include "runtime/model/model.h"

namespace pinfer {

struct ExecutorOptions {
  int64_t batch_size = 256;  // prompt tokens per forward pass
};

class Executor {
 public:
  // Installs DenseFfn in every layer.
  explicit Executor(const Model& model, const ExecutorOptions& options = {});

  const Model& model() const { return model_; }
  const ModelConfig& config() const { return model_.config(); }
  int64_t batch_size() const { return options_.batch_size; }

  // Replaces the FFN of one layer (or of all layers). The strategy must stay valid while sessions
  // run; strategies may be shared between layers.
  absl::Status SetFfn(int64_t layer, std::shared_ptr<FfnStrategy> ffn);
  absl::Status SetFfnForAllLayers(std::shared_ptr<FfnStrategy> ffn);
  FfnStrategy& ffn(int64_t layer) const { return *ffn_[static_cast<size_t>(layer)]; }

 private:
  const Model& model_;
  ExecutorOptions options_;
  std::vector<std::shared_ptr<FfnStrategy>> ffn_;
};

}  // namespace pinfer
