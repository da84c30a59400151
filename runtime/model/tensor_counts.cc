#include "runtime/model/tensor_counts.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "runtime/model/tensor_names.h"

namespace pinfer {

std::optional<int64_t> LayerOfTensor(std::string_view name) {
  constexpr std::string_view kPrefix = "blk.";
  if (!name.starts_with(kPrefix)) return std::nullopt;
  name.remove_prefix(kPrefix.size());
  const size_t dot = name.find('.');
  int layer = -1;
  if (dot == std::string_view::npos ||
      !absl::SimpleAtoi(absl::string_view(name.data(), dot), &layer) || layer < 0) {
    return std::nullopt;
  }
  return layer;
}

void TensorTableCounts::Add(std::string_view name, std::span<const uint64_t> shape) {
  if (std::optional<int64_t> layer = LayerOfTensor(name)) {
    layers_ = std::max(layers_, *layer + 1);
  } else if (name == tensor_names::kTokenEmbedding && !shape.empty()) {
    embedding_rows_ = shape.front();
  }
}

absl::Status TensorTableCounts::Check(const ModelConfig& config) const {
  if (config.n_layers != layers_) {
    return absl::InvalidArgumentError(absl::StrCat("the header declares ", config.n_layers,
                                                   " layers but the tensors are those of ", layers_,
                                                   " layer", layers_ == 1 ? "" : "s"));
  }
  if (embedding_rows_ && *embedding_rows_ != static_cast<uint64_t>(config.vocab_size)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the header declares a vocabulary of ", config.vocab_size,
                     " tokens but the token embedding has ", *embedding_rows_, " rows"));
  }
  return absl::OkStatus();
}

}  // namespace pinfer
