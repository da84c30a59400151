#include "runtime/exec/neuron_selector.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/cpu/kernels.h"

namespace pinfer {

bool FiringThresholds::Fires(int64_t layer, float gate, float activation_value) const {
  if (!calibrated()) return activation_value != 0.0f;
  return std::fabs(activation.Gate(gate)) > per_layer[static_cast<size_t>(layer)];
}

void FiringThresholds::Apply(int64_t layer, const float* gate, int64_t count, float* a) const {
  if (!calibrated()) return;
  const float tau = per_layer[static_cast<size_t>(layer)];
  for (int64_t j = 0; j < count; ++j) {
    if (!(std::fabs(activation.Gate(gate[j])) > tau)) a[j] = 0.0f;
  }
}

void ComputeTrueActivations(const Model& model, const FiringThresholds& firing, int64_t layer,
                            const float* x, int64_t n, FfnWorkspace& ws) {
  const ModelConfig& c = model.config();
  const LayerWeights& w = model.layer(layer);
  cpu::MatMul(w.ffn_gate, x, n, ws.gate.data());
  cpu::MatMul(w.ffn_up, x, n, ws.up.data());
  cpu::FfnCombine(ToKernelActivation(c.ffn_act.kind), c.ffn_act.param, ws.gate.data(), ws.up.data(),
                  n * c.n_ff, ws.activations.data());
  firing.Apply(layer, ws.gate.data(), n * c.n_ff, ws.activations.data());
}

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
  ComputeTrueActivations(model_, firing_, layer, x, n, ws);
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
