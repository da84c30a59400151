// The neuron-sparse FFN over a layer's GPU-resident hot neurons.
//
// The plan gathers the hot neurons' rows of ffn_gate, ffn_up and ffn_down_t (the neuron-major down
// projection) into contiguous device matrices, slot j holding neuron neuron_ids[j]. Per token, only
// the hot neurons the predictor marks active are computed:
//   for each slot j with active_mask[neuron_ids[j]]:  a_j = act(gate_j · x, up_j · x);  y += a_j
//   down_j
// Inactive hot neurons cost no weight reads. The list of computed slots stays on the GPU, so the
// whole layer runs without a host round trip.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "runtime/cuda/kernels.h"
#include "runtime/cuda/stream.h"

namespace pinfer::cuda {

struct HotFfnWeights {
  DeviceMatrix gate;                    // [n_hot, dim]
  DeviceMatrix up;                      // [n_hot, dim], same dtype as gate
  DeviceMatrix down;                    // [n_hot, dim], rows of ffn_down_t (any weight dtype)
  const int32_t* neuron_ids = nullptr;  // [n_hot] on the device: each slot's neuron in [0, n_ff)
};

// y[dim] += the hot neurons' contribution for the token x[dim] (see above). `active_mask` is a
// device array of n_ff bytes indexed by neuron id (nonzero = active), e.g. from
// PredictActiveNeurons; null computes every hot neuron. `computed_count`, when not null, receives
// (on the device) how many hot neurons were computed. For q8_0/q4_0 gate/up, x must be 16-byte
// aligned. `threshold` >= 0: a calibrated model's rule (kernels.h FfnCombine).
absl::Status HotSparseFfn(Stream& stream, const HotFfnWeights& weights, ActivationKind act,
                          float param, const float* x, const uint8_t* active_mask, float* y,
                          int32_t* computed_count = nullptr, float threshold = -1.0f);

// The FFN rule of a layer: activation, its parameter, and the calibrated threshold (< 0: none).
struct HotFfnRule {
  ActivationKind act = ActivationKind::kSilu;
  float param = 0.0f;
  float threshold = -1.0f;
};

// The hot neurons' FFN for n tokens: y[t] += Σ_j a_j(x_t)·down_j over x [n, dim] and y [n, dim].
// The GPU's one routine for "these neurons of this layer", as ffn_rows.h is the CPU's.
//   masks null: every hot neuron (n > 1: dense products over the gathered rows);
//   else token t computes the hot neurons marked in masks[t * mask_stride, + n_ff).
// computed (device, [n], may be null) receives each token's computed count (masks only).
absl::Status HotFfn(Stream& stream, const HotFfnWeights& weights, const HotFfnRule& rule,
                    const float* x, int64_t n, const uint8_t* masks, int64_t mask_stride, float* y,
                    int32_t* computed = nullptr);

}  // namespace pinfer::cuda
