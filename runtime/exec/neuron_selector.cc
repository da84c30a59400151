#include "runtime/exec/neuron_selector.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace pinfer {

absl::Status PredictorSelector::Select(int64_t layer, const float* x, int64_t n,
                                       FfnWorkspace& /*workspace*/, SelectedNeurons& out) {
  if (layer < 0 || layer >= weights_->n_layers()) {
    return absl::InternalError(absl::StrCat("the predictor has no layer ", layer));
  }
  cpu::PredictActive(weights_->View(layer), x, n, scratch_, active_);
  // The same layout: hand the vectors over (they come back, grown, at the next call).
  std::swap(out.ids, active_.ids);
  std::swap(out.offsets, active_.offsets);
  return absl::OkStatus();
}

absl::Status OracleSelector::Select(int64_t layer, const float* x, int64_t n, FfnWorkspace& ws,
                                    SelectedNeurons& out) {
  const int64_t n_ff = model_.config().n_ff;
  ComputeTrueActivations({&model_, layer, &firing_}, x, n, ws);
  out.Clear();
  for (int64_t t = 0; t < n; ++t) {
    const float* g = ws.gate.data() + t * n_ff;
    const float* a = ws.activations.data() + t * n_ff;
    for (int64_t i = 0; i < n_ff; ++i) {
      if (firing_.Fires(layer, g[i], a[i])) out.ids.push_back(static_cast<int32_t>(i));
    }
    out.offsets.push_back(static_cast<int64_t>(out.ids.size()));
  }
  return absl::OkStatus();
}

}  // namespace pinfer
