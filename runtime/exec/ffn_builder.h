// The one builder of the executor's FFN: from what the load step resolved (selector, thresholds,
// cost model, a placement plan's per-layer GPU neurons), exactly one LayerFfn per layer.
//   no plan, no selector   dense: one CPU part computing every neuron (no thresholds: the original
//                          model, what --dense runs)
//   no plan, exact         one CPU part selecting gate-first (no predictor; the dense output)
//   no plan, a selector    sparse CPU execution: one CPU part selecting the predicted neurons,
//                          with the thresholds and the cost model
//   auto                   the CPU parts choose per call between all, exact and the selector
//                          (when there is one) by the cost model (--sparse-mode auto)
//   a plan                 hybrid: the plan's GPU neurons in a GPU part (or a CPU stand-in), the
//                          rest in a CPU part; both select when there is a selector (a CUDA part
//                          may select with its own device predictor)
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/exec/backend.h"
#include "runtime/exec/ffn_cost_model.h"
#include "runtime/exec/ffn_part.h"
#include "runtime/exec/layer_ffn.h"
#include "runtime/exec/neuron_selector.h"
#include "runtime/model/firing_thresholds.h"
#include "runtime/model/model.h"

namespace pinfer {

// Builds a layer's GPU backend over its plan neurons (ascending, non-empty).
using GpuBackendFactory = std::function<absl::StatusOr<std::unique_ptr<PartBackend>>(
    int64_t layer, std::vector<int32_t> neurons)>;

// The GPU parts of the CPU stand-in device (cpu_backend.h): CpuPartBackends with a partial sum of
// their own, merged as the GPU's, whose rows are accounted in `device`'s memory (they are read from
// the mapped model: the rows are read-only, what the stand-in checks is where activations go).
GpuBackendFactory StandInPartFactory(const Model& model, std::shared_ptr<Backend> device,
                                     std::shared_ptr<const FiringThresholds> firing);

struct FfnSetup {
  std::shared_ptr<NeuronSelector> selector;        // null: every neuron
  std::shared_ptr<const FiringThresholds> firing;  // null: none
  std::shared_ptr<const FfnCostModel> cost;        // the CPU parts'; null: the selection always
  bool check = false;                              // --check on every part
  // No selector: the CPU parts select exactly, gate-first (a CUDA part computes all of its
  // neurons).
  bool exact = false;
  // The CPU parts select auto (a selector, when given, is one of the candidates), starting from
  // these per-layer densities (empty: none known).
  bool auto_select = false;
  std::vector<AutoDensities> auto_priors;
  // A plan: per layer, the GPU part's neurons (ascending; empty for a layer all on the CPU).
  // Empty vector: no plan.
  std::vector<std::vector<int32_t>> gpu_neurons;
  // null: a CPU stand-in computes the GPU part (with a partial sum of its own, merged as the
  // GPU's).
  GpuBackendFactory gpu_backend;
};

absl::StatusOr<std::vector<std::unique_ptr<LayerFfn>>> BuildFfnLayers(const Model& model,
                                                                      const FfnSetup& setup);

}  // namespace pinfer
