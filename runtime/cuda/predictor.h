// The activation predictor of one layer on the GPU: a low-rank MLP from the FFN's input to the
// probability that each neuron fires, thresholded into a compacted list of predicted-active
// neurons (ascending ids) and, optionally, a dense mask for HotSparseFfn.
//   hidden = relu(W1 x + b1)           (rank)
//   p      = sigmoid(W2 hidden + b2)   (n_ff);   neuron i is active when p_i >= threshold
// The predictor artifact's format is defined elsewhere; this takes its device tensors.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "runtime/cuda/kernels.h"
#include "runtime/cuda/stream.h"

namespace pinfer::cuda {

enum class PredictorLayout {
  kOutputMajor,  // W1 [rank, dim], W2 [n_ff, rank]: one row per output, as every .pi weight
  kInputMajor,   // W1 [dim, rank], W2 [rank, n_ff]: the "x · W" layout (computed as transposed
                 // accumulations, so no copy is needed)
};

struct DevicePredictor {
  DeviceMatrix w1;  // any weight dtype (f16 in practice)
  DeviceMatrix w2;
  const float* b1 = nullptr;  // [rank] or null
  const float* b2 = nullptr;  // [n_ff] or null
  PredictorLayout layout = PredictorLayout::kOutputMajor;

  int64_t dim() const;
  int64_t rank() const;
  int64_t n_ff() const;
};

// Writes the predicted-active neuron ids in ascending order to active_ids[0, *active_count)
// (active_ids has room for n_ff) and, when active_mask is not null, active_mask[i] = 1 for active
// neurons and 0 for the others (n_ff bytes). All outputs are device memory. threshold in [0, 1].
// For q8_0/q4_0 W1 (output-major), x must be 16-byte aligned.
absl::Status PredictActiveNeurons(Stream& stream, const DevicePredictor& weights, const float* x,
                                  float threshold, int32_t* active_ids, int32_t* active_count,
                                  uint8_t* active_mask);

}  // namespace pinfer::cuda
