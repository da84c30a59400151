// The counts a model's tensor table implies (layers, vocabulary rows), so that the counts a header
// declares are checked against the tensors actually present before anything is allocated per
// layer or per token. One changed byte in a header's layer or vocabulary count must be one clear
// error, not an allocation of 2^30 layers. Used by the .pi loader and by every pi-convert source.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "absl/status/status.h"
#include "runtime/model/model_config.h"

namespace pinfer {

// The layer index of a per-layer tensor name ("blk.12.attn_q" -> 12), nullopt for other names.
std::optional<int64_t> LayerOfTensor(std::string_view name);

class TensorTableCounts {
 public:
  // Records one tensor of the table, by our name (runtime/model/tensor_names.h).
  void Add(std::string_view name, std::span<const uint64_t> shape);

  // 1 + the highest layer index among the tensors (0 without per-layer tensors).
  int64_t layers() const { return layers_; }

  // OK when the header's n_layers is the number of layers the tensors hold and its vocab_size is
  // the token embedding's row count (when present). The message says both numbers.
  absl::Status Check(const ModelConfig& config) const;

 private:
  int64_t layers_ = 0;
  std::optional<uint64_t> embedding_rows_;
};

}  // namespace pinfer
