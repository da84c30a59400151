#include "runtime/exec/executor.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace pinfer {

Executor::Executor(const Model& model, const ExecutorOptions& options)
    : model_(model), options_(options) {
  options_.batch_size = std::max<int64_t>(1, options_.batch_size);
  ffn_.assign(static_cast<size_t>(model_.n_layers()), std::make_shared<DenseFfn>(model));
}

absl::Status Executor::SetFfn(int64_t layer, std::shared_ptr<FfnStrategy> ffn) {
  if (layer < 0 || layer >= model_.n_layers()) {
    return absl::OutOfRangeError(
        absl::StrCat("layer ", layer, " is outside the model's ", model_.n_layers(), " layers"));
  }
  if (ffn == nullptr) return absl::InvalidArgumentError("no FFN strategy given");
  ffn_[static_cast<size_t>(layer)] = std::move(ffn);
  return absl::OkStatus();
}

absl::Status Executor::SetFfnForAllLayers(std::shared_ptr<FfnStrategy> ffn) {
  if (ffn == nullptr) return absl::InvalidArgumentError("no FFN strategy given");
  ffn_.assign(static_cast<size_t>(model_.n_layers()), std::move(ffn));
  return absl::OkStatus();
}

}  // namespace pinfer
