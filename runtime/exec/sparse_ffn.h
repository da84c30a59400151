// The neuron-sparse CPU FFN (issue 7): per layer, a NeuronSelector says which neurons the tokens of
// a batch use (neuron_selector.h: an activation predictor in production, the true activations in
// tests and --check); only their gate and up rows are multiplied (cpu::GatherMatMul), and only
// their ffn_down_t rows accumulated (cpu::GatherMatMulTransposedAccumulate). A measured cost model
// (sparse_cost_model.h) sends a call to the dense kernels when the selected density is too high for
// sparse to win.
//
// Batches (prompts, perplexity): the batch computes the UNION of its tokens' selected neurons, for
// every token of the batch. One gathered product over the union reads each selected row once for
// the whole batch (what makes batched products cheap), and the union is a superset of each token's
// selection, so a token gets its own neurons plus some exactly computed extra ones: never worse
// than its own selection. When the union is dense (typical for long prompts on predicted models,
// since different tokens fire different neurons), the cost model picks the dense kernels.
//
// Calibrated models (silu/gelu without exact zeros, neuron_selector.h's FiringThresholds): at run
// time the rule is applied
// to every computed neuron: a_i = act(g_i)·u_i when |act(g_i)| > τ, else exactly 0. So a sparse
// call computes "the thresholded model restricted to the selected neurons", the dense fallback
// computes the thresholded model over all neurons, and the oracle selection reproduces the
// thresholded model exactly. (--dense runs DenseFfn: the original, unthresholded model.)
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/exec/ffn.h"
#include "runtime/exec/neuron_selector.h"
#include "runtime/exec/sparse_cost_model.h"
#include "runtime/model/model.h"

namespace pinfer {

// Per-layer statistics, summed over calls.
struct SparseLayerStats {
  int64_t calls = 0;
  int64_t dense_calls = 0;    // calls the cost model (or an observer) sent to the dense kernels
  int64_t tokens = 0;         // tokens through the layer
  int64_t selected = 0;       // Σ over tokens of the token's selected neurons
  int64_t computed = 0;       // Σ over calls of neurons computed (union, or n_ff when dense)
  int64_t max_selected = 0;   // the largest selection (batch union) of one call
  uint64_t weight_bytes = 0;  // FFN + selector weight bytes read
  // --check: against the true activations (calibrated models: the thresholded ones).
  int64_t true_active = 0;   // Σ over tokens of neurons that truly fire
  int64_t hits = 0;          // Σ over tokens of neurons selected and firing
  double true_mass = 0.0;    // Σ |a_i| over the firing neurons
  double missed_mass = 0.0;  // Σ |a_i| over the firing neurons not selected

  double SelectedDensity(int64_t n_ff) const;
  double TrueDensity(int64_t n_ff) const;
  double Recall() const;
  double FalseNegativeMass() const;
};

struct SparseFfnOptions {
  FiringThresholds firing;
  SparseCostModel cost;  // per-layer crossover densities (sparse_cost_model.h)
  bool check = false;    // also compute the true activations and fill the check statistics
};

class SparseFfn : public FfnStrategy {
 public:
  SparseFfn(const Model& model, std::shared_ptr<NeuronSelector> selector, SparseFfnOptions options);
  std::string_view name() const override { return "sparse"; }
  absl::StatusOr<FfnCallStats> Forward(const FfnCall& call) override;

  const NeuronSelector& selector() const { return *selector_; }
  const SparseFfnOptions& options() const { return options_; }
  const std::vector<SparseLayerStats>& stats() const { return stats_; }
  void ResetStats();

 private:
  // The FFN over every neuron (thresholds applied), as DenseFfn plus the calibrated rule.
  uint64_t ForwardDense(const FfnCall& call);
  // The FFN over the listed neurons (ascending), for every token of the batch.
  uint64_t ForwardSelected(const FfnCall& call, std::span<const int32_t> neurons);
  // The union of the tokens' selections, ascending, into union_.
  std::span<const int32_t> BatchUnion(const SelectedNeurons& selected);
  // --check: compares the selection with the true activations (computed into the workspace).
  void Check(const FfnCall& call, const SelectedNeurons& selected);

  const Model& model_;
  std::shared_ptr<NeuronSelector> selector_;
  SparseFfnOptions options_;
  std::vector<SparseLayerStats> stats_;
  SelectedNeurons selected_;
  std::vector<int32_t> union_;
  std::vector<uint32_t> marks_;  // [n_ff]: the call number that last marked the neuron
  uint32_t mark_ = 0;
};

// One line per layer (and a total) of the --check statistics and the selection, for stderr.
std::string FormatSparseReport(const SparseFfn& ffn, int64_t n_ff, bool with_check);

}  // namespace pinfer
