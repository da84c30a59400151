// Names of a PowerInfer GGUF that pinfer reads (pi-train-predictor --import) and writes
// (pi-export --powerinfer), as PowerInfer's gguf-py/gguf/constants.py and llama.cpp spell them.
#pragma once

#include <string>

#include "absl/strings/str_cat.h"

namespace pinfer::powerinfer {

// The global predictor threshold (float32; absent: 0) and the environment variable that replaces
// it at load (llama.cpp's llm_load_hparams).
inline constexpr char kSparseThresholdKey[] = "powerinfer.sparse_threshold";
inline constexpr char kThresholdEnvironment[] = "LLAMA_SPARSE_PRED_THRESHOLD";

// The predictor of layer l: fc1 ne {dim, rank} (row-major [rank, dim]), fc2 ne {rank, n_ff}
// (row-major [n_ff, rank]); and the transposed down projection ne {dim, n_ff}.
inline std::string Fc1(int64_t layer) { return absl::StrCat("blk.", layer, ".fc1.weight"); }
inline std::string Fc2(int64_t layer) { return absl::StrCat("blk.", layer, ".fc2.weight"); }
inline std::string FfnDownT(int64_t layer) {
  return absl::StrCat("blk.", layer, ".ffn_down_t.weight");
}

// The activation statistics PowerInfer's solver reads (powerinfer-py/powerinfer/solver.py):
// DIR/activation_<l>.pt, each a torch.save'd 1-D tensor of n_ff per-neuron firing counts.
inline std::string ActivationFileName(int64_t layer) {
  return absl::StrCat("activation_", layer, ".pt");
}

}  // namespace pinfer::powerinfer
