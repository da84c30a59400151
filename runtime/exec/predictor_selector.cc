#include "runtime/exec/predictor_selector.h"

namespace pinfer {

absl::Status PredictorSelector::Select(int64_t layer, const float* x, int64_t n,
                                       FfnWorkspace& /*workspace*/, SelectedNeurons& out) {
  cpu::PredictActive(weights_.View(layer), x, n, scratch_, active_);
  out.ids.swap(active_.ids);
  out.offsets.swap(active_.offsets);
  return absl::OkStatus();
}

}  // namespace pinfer
