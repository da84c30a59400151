#include "tools/solve_placement/memory_accounting.h"

#include <algorithm>

namespace pinfer {

uint64_t KvCacheBytesPerLayer(const ModelConfig& config, int64_t context) {
  return 2 * static_cast<uint64_t>(context) * static_cast<uint64_t>(config.kv_dim()) * 2;
}

uint64_t WorkspaceBytes(const ModelConfig& config, int64_t context, int64_t batch) {
  const uint64_t per_token = static_cast<uint64_t>(
      4 * config.dim + config.q_dim() + 2 * config.kv_dim() + 2 * config.n_ff + config.vocab_size);
  return 4 * static_cast<uint64_t>(batch) * per_token +
         4 * static_cast<uint64_t>(config.n_heads) * static_cast<uint64_t>(context);
}

int64_t DefaultPredictorRank(const ModelConfig& config) {
  return std::clamp<int64_t>(config.dim / 4, 16, 1024);
}

uint64_t EstimatedPredictorBytesPerLayer(const ModelConfig& config, int64_t rank) {
  const uint64_t r = static_cast<uint64_t>(rank);
  return 2 * r * static_cast<uint64_t>(config.dim + config.n_ff) +
         4 * (r + static_cast<uint64_t>(config.n_ff));
}

}  // namespace pinfer
