// A layer's FFN: ONE mechanism for dense, sparse and hybrid execution. A layer is a list of parts
// whose neuron sets partition [0, n_ff); each part has
//   - a backend (ffn_part.h: the CPU, or the GPU when built) that computes "these neurons of this
//     layer";
//   - a neuron set;
//   - a selection: every neuron of the part, the neurons the layer's selector (the activation
//     predictor) predicts active, or the exact set found gate-first (no predictor: every gate row,
//     then the up and down rows of the neurons that fire; the output is the dense one);
//   - a cost model (ffn_cost_model.h) that picks, per call, how a selecting part computes: its
//     tokens' union for the whole batch, each token's own set, or every neuron of the part (the
//     dense fallback, when the selection is too dense to win);
//   - or, selection auto (--sparse-mode auto), the same cost model picks per call which of the
//     three selections runs (every neuron, exact, the predictor), its own cost counted, from the
//     densities the part has seen (each token's firing density from its exact calls, the
//     predictor's from its predicted ones; priors from the predictor's report). A decode call
//     (one token) and a batch choose apart: their costs differ.
// Dense execution is one CPU part selecting all; sparse CPU execution one CPU part selecting
// predicted; a hybrid layer has a GPU part (hot neurons) and a CPU part (the rest), run
// concurrently and summed. --check works for every part: the true activations are computed and
// compared with what the part selected.
//
// Calibrated models (silu/gelu without exact zeros, firing_thresholds.h): each part applies the
// rule to every neuron it computes, so a selecting part computes "the thresholded model
// restricted to the selected neurons", its dense fallback the thresholded model over its neurons.
//
// Batches (prompts, perplexity) under a union: a token gets its own neurons plus some exactly
// computed extra ones, never worse than its own selection; one gathered product over the union
// reads each selected row once for the whole batch.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/exec/ffn_cost_model.h"
#include "runtime/exec/ffn_part.h"
#include "runtime/exec/ffn_rows.h"
#include "runtime/exec/ffn_stats.h"
#include "runtime/exec/neuron_selector.h"
#include "runtime/model/model.h"

namespace pinfer {

// One layer call of the executor: output += FFN(input).
struct FfnCall {
  int64_t layer = 0;
  int64_t n = 0;                 // tokens in the batch (<= workspace->capacity)
  const float* input = nullptr;  // [n, dim]: after ffn_norm and the norm activation
  float* output = nullptr;       // [n, dim]: the residual stream; the FFN ADDS its result here
  FfnWorkspace* workspace = nullptr;
  // An observer wants the activation vector: after the call, workspace->gate and ->activations
  // hold all of [n, n_ff] (the true activations, thresholds applied).
  bool need_activations = false;
  // A layer whose hidden state is on the device (Executor): the device parts read device_input
  // and add into device_output (device memory); the host parts read `input` (the normed input,
  // downloaded) and add into `output` (a partial sum the executor uploads and adds). Null: every
  // part works on `input` and `output`.
  const float* device_input = nullptr;
  float* device_output = nullptr;
};

enum class Selection {
  kAll,        // every neuron of the part
  kPredicted,  // the layer's selector (or the backend's own on-device predictor)
  kExact,      // gate-first: every gate row, then up and down for the neurons that fire (CPU)
  kAuto,       // per call, the cheapest of the three by the part's cost model (CPU)
};

// What an auto part has seen: per-token densities (fractions of n_ff); < 0: not yet known.
struct AutoDensities {
  double fired = -1.0;      // neurons that fire for a token (its exact calls)
  double predicted = -1.0;  // neurons the predictor selects for a token (its predicted calls)
};

struct FfnPart {
  std::unique_ptr<PartBackend> backend;
  std::vector<int32_t> neurons;  // ascending
  Selection selection = Selection::kAll;
  // How a selecting part computes each call; null: the selection always (the union of a batch).
  std::shared_ptr<const FfnCostModel> cost;
  FfnStats stats;
  AutoDensities seen;  // kAuto: updated after every call
};

class LayerFfn {
 public:
  // `parts` partition the layer's neurons (BuildLayerFfn checks it); `selector` (may be null when
  // no part selects on the host) is shared with other layers; `firing` null: no thresholds.
  LayerFfn(const Model& model, int64_t layer, std::vector<FfnPart> parts,
           std::shared_ptr<NeuronSelector> selector, std::shared_ptr<const FiringThresholds> firing,
           bool check);

  // output += FFN(input); returns the weight bytes read. One call at a time.
  absl::StatusOr<uint64_t> Forward(const FfnCall& call);

  int64_t layer() const { return layer_; }
  std::span<const FfnPart> parts() const { return parts_; }
  // Whether a part computes on the host (not asynchronous): a device-resident call then needs the
  // normed input on the host and an upload of the host parts' partial sum.
  bool has_host_parts() const;
  // Whether a device-resident call needs the normed input on the host even without host parts:
  // the host selector runs, --check, or an observer wants the activations.
  bool NeedsHostInput(bool need_activations) const;
  const NeuronSelector* selector() const { return selector_.get(); }
  bool check() const { return check_; }
  // The selector's own time and bytes (not in any part's stats).
  const FfnStats& selector_stats() const { return selector_stats_; }
  // Every part's stats and the selector's, summed.
  FfnStats Totals() const;
  void ResetStats();

 private:
  // How part p selects this call (kAuto: by the cost model).
  AutoMode ModeOf(size_t p, int64_t n) const;
  // The rows part p computes for this call in `mode` (and its stats of the selection).
  NeuronRows ChooseRows(size_t p, int64_t n, AutoMode mode);
  // kAuto: what the call just computed refines the part's densities.
  void Learn(size_t p, int64_t n, AutoMode mode, const FfnStats& result);
  // The union of `sets` (ascending) into `out`.
  void Union(const SelectedNeurons& sets, std::vector<int32_t>& out);
  // --check: the true activations (into the workspace) against each part's selection.
  // `selected_on_host`: the selector's sets of this call are in selected_.
  void Check(const FfnCall& call, bool selected_on_host);

  const Model& model_;
  int64_t layer_;
  std::vector<FfnPart> parts_;
  std::shared_ptr<NeuronSelector> selector_;
  std::shared_ptr<const FiringThresholds> firing_;
  bool check_;
  // Bytes of the layer for the auto choice: gate rows, up and down rows, the predictor.
  double gate_bytes_ = 0.0, up_down_bytes_ = 0.0, predictor_bytes_ = 0.0;
  std::vector<int32_t> owner_;   // [n_ff]: the part of each neuron
  FfnStats selector_stats_;
  // Per-call scratch.
  SelectedNeurons selected_;                  // the selector's sets over the layer
  std::vector<SelectedNeurons> part_tokens_;  // per part: each token's selected neurons of it
  std::vector<std::vector<int32_t>> part_union_;
  std::vector<PartCall> part_calls_;
  std::vector<AutoMode> modes_;           // per part, this call's
  std::vector<int64_t> selected_union_;  // per part: the predictor's union of this call
  std::vector<uint32_t> marks_;  // [n_ff]: the stamp that last marked the neuron
  uint32_t mark_ = 0;
};

// A LayerFfn after checking that the parts' neuron sets are ascending, inside [0, n_ff) and
// partition the layer, and that a selecting part has a selector. Errors name the layer.
absl::StatusOr<std::unique_ptr<LayerFfn>> BuildLayerFfn(
    const Model& model, int64_t layer, std::vector<FfnPart> parts,
    std::shared_ptr<NeuronSelector> selector, std::shared_ptr<const FiringThresholds> firing,
    bool check);

// The neurons of [0, n_ff) that are not in `part` (ascending; `part` ascending).
std::vector<int32_t> ComplementNeurons(std::span<const int32_t> part, int64_t n_ff);

}  // namespace pinfer
