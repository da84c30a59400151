// What FFN computation did: the one statistics type of a layer call, a part and a layer. A part's
// backend fills computed, weight_bytes and seconds for one call (PartBackend::Finish); LayerFfn
// sums the calls per part; reports sum the parts and layers.
#pragma once

#include <cstdint>

namespace pinfer {

// What a part (or a layer) did, summed over calls since the last ResetStats()
// (or, from a backend, in one call).
struct FfnStats {
  int64_t calls = 0;
  int64_t dense_calls = 0;       // calls of a selecting part that computed every neuron of it
  int64_t tokens = 0;            // tokens through the part
  int64_t selected = 0;          // Σ over tokens of the part's neurons selected (all, for kAll)
  int64_t computed = 0;          // Σ over tokens of the neurons computed
  int64_t max_selected = 0;      // the largest selection (batch union) of one call
  uint64_t weight_bytes = 0;     // FFN and selector weight bytes read
  double seconds = 0.0;          // the backend's own time
  double wait_seconds = 0.0;     // time the calling thread blocked on an asynchronous part
  double select_seconds = 0.0;   // the layer's selector (predictor)
  int64_t synchronisations = 0;  // calls that waited for an asynchronous part
  // --check: against the true activations (calibrated models: the thresholded ones).
  int64_t true_active = 0;   // Σ over tokens of neurons that truly fire
  int64_t hits = 0;          // Σ over tokens of neurons selected and firing
  double true_mass = 0.0;    // Σ |a_i| over the firing neurons
  double missed_mass = 0.0;  // Σ |a_i| over the firing neurons not selected
  // Calls by how the part selected them: [0] decode (one token), [1] batches (prompts); then
  // [0] every neuron, [1] exact gate-first, [2] the predictor (AutoMode's order, ffn_cost_model.h).
  int64_t mode_calls[2][3] = {};

  FfnStats& operator+=(const FfnStats& other);
  // Fractions of `neurons` (the part's size, or n_ff) per token.
  double SelectedDensity(int64_t neurons) const;
  double TrueDensity(int64_t neurons) const;
  double Recall() const;
  double FalseNegativeMass() const;
};

}  // namespace pinfer
