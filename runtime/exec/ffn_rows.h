// The one CPU routine that computes a layer's FFN for a set of its neurons. Every CPU path goes
// through it: the dense FFN (all neurons), sparse execution (one list for the batch, or a list
// per token), the true activations that --check and the oracle compare against, the CPU part of
// a hybrid layer and the cost model's load-time timing.
//
// For neuron i of the set and token t (gate and up stored [n_ff, dim], down transposed, so a
// neuron's three rows are contiguous):
//   g = gate_i·x_t, u = up_i·x_t, a = act(g, u), zeroed unless it fires (firing_thresholds.h)
//   y_t += a · down_i
// A gate-less FFN (OPT: fc1 -> act -> fc2, stored with fc1 as the gate and no up):
//   g = gate_i·x_t + b_i (fc1's bias, when the model has biases), a = act(g)
// so the gate rows decide the firing set exactly as for a gated FFN and gate-first selection,
// the predictor's sets and the profile apply unchanged; fc2's bias is the executor's (once per
// token, not per part).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "runtime/model/firing_thresholds.h"
#include "runtime/model/model.h"

namespace pinfer {

// Scratch for the FFN, owned by the session and sized for its batch capacity (so that the FFN
// holds no per-session state and one FFN serves every session).
struct FfnWorkspace {
  int64_t capacity = 0;            // tokens per batch
  std::vector<float> gate;         // [capacity, n_ff]: gate_i·x, before the activation
  std::vector<float> up;           // [capacity, n_ff]: up_i·x
  std::vector<float> activations;  // [capacity, n_ff]: a[t, i] = act(gate_i·x_t)·(up_i·x_t)
  std::vector<int32_t> fired;      // gate-first selection: the neurons that fire for some token
  std::vector<uint8_t> fires;      // gate-first selection: [n, count], token t's neuron j fires
};

// The selected (active) neurons of each token of a batch: token t's are
// ids[offsets[t], offsets[t + 1]), ascending (the layout of cpu::PredictedActive).
struct SelectedNeurons {
  std::vector<int32_t> ids;
  std::vector<int64_t> offsets;  // n + 1 entries

  int64_t tokens() const { return offsets.empty() ? 0 : static_cast<int64_t>(offsets.size()) - 1; }
  std::span<const int32_t> Token(int64_t t) const {
    const auto begin = static_cast<size_t>(offsets[static_cast<size_t>(t)]);
    const auto end = static_cast<size_t>(offsets[static_cast<size_t>(t) + 1]);
    return std::span<const int32_t>(ids).subspan(begin, end - begin);
  }
  void Clear() {
    ids.clear();
    offsets.assign(1, 0);
  }
  // Appends one token's ascending ids.
  void AddToken(std::span<const int32_t> token_ids) {
    if (offsets.empty()) offsets.push_back(0);
    ids.insert(ids.end(), token_ids.begin(), token_ids.end());
    offsets.push_back(static_cast<int64_t>(ids.size()));
  }
};

// Which neurons one call computes.
struct NeuronRows {
  enum class Kind {
    kAll,       // every neuron of the layer (the dense kernels)
    kBatch,     // `batch` (ascending) for every token of the call
    kPerToken,  // per_token->Token(t) for token t
    // Exact gate-first selection over `batch` (empty: every neuron): every gate row first, then
    // the up and down rows of only the neurons that fire for some token of the call (ReLU family:
    // act(g) != 0; calibrated: |act(g)| > τ). Its output is the output over every listed neuron:
    // the neurons left out contribute exactly 0.
    kGateFirst,
  };
  Kind kind = Kind::kAll;
  std::span<const int32_t> batch;
  const SelectedNeurons* per_token = nullptr;

  static NeuronRows All() { return {}; }
  static NeuronRows Batch(std::span<const int32_t> ids) { return {Kind::kBatch, ids, nullptr}; }
  static NeuronRows PerToken(const SelectedNeurons& sets) { return {Kind::kPerToken, {}, &sets}; }
  static NeuronRows GateFirst(std::span<const int32_t> ids = {}) {
    return {Kind::kGateFirst, ids, nullptr};
  }
  // Σ over the n tokens of the neurons computed for each (for kGateFirst: of the gate rows).
  int64_t Computed(int64_t n, int64_t n_ff) const;
};

// The layer and rule the routine computes with.
struct FfnRowsLayer {
  const Model* model = nullptr;
  int64_t layer = 0;
  const FiringThresholds* firing = nullptr;  // null or exact zeros: activations as computed
};

// y[t] += Σ_{i ∈ rows(t)} a_i(x_t)·down_i for the n tokens of x [n, dim]. y null: the
// activations only. Leaves the products in the workspace: for kAll (and a one-token call of any
// kind) gate/activations hold [n, count] with count = n_ff or the list's size; for kPerToken of
// several tokens, only the last token's; for kGateFirst, nothing usable. Returns the weight bytes
// read (each row once per call). `fired` (kGateFirst only, may be null) receives Σ over tokens of
// the neurons that fired.
uint64_t ComputeFfnRows(const FfnRowsLayer& layer, const float* x, int64_t n,
                        const NeuronRows& rows, FfnWorkspace& ws, float* y,
                        int64_t* fired = nullptr);

// The dense FFN's gate/up/activations [n, n_ff] in the workspace (thresholds applied), without
// touching any output: what the oracle, --check and observers compare against.
inline void ComputeTrueActivations(const FfnRowsLayer& layer, const float* x, int64_t n,
                                   FfnWorkspace& ws) {
  ComputeFfnRows(layer, x, n, NeuronRows::All(), ws, nullptr);
}

}  // namespace pinfer
