// The hybrid FFN strategy: each layer's neurons split in two parts by the placement plan
// (runtime/model/placement_plan.h: blk.N.ffn_gpu_neurons on the GPU, the rest on the CPU), each
// part computed by its own backend (ffn_part.h), concurrently, and the two partial sums added to
// the residual stream. Per layer and batch:
//   active = selector(x)            (optional: the predictor; without one every neuron is computed,
//                                    and the result equals the dense FFN)
//   gpu.Begin  — enqueues x's upload, the hot rows' FFN and the partial's download on its stream
//   cpu.Begin  — computes the cold active rows on the OpenMP kernels meanwhile, into the residual
//   gpu.Finish — the layer's one synchronisation; adds the GPU partial to the residual
// A layer with no GPU neurons runs only its CPU part (no synchronisation), a layer entirely on the
// GPU only its GPU part. Without a GPU the "GPU" part is a CpuFfnPart with a partial buffer of its
// own, so the split and the merge run (and are tested) on any machine.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/exec/ffn.h"
#include "runtime/exec/ffn_part.h"
#include "runtime/model/model.h"
#include "runtime/model/placement_plan.h"

namespace pinfer {

// What the hybrid layers did, summed since the last ResetStats().
struct HybridFfnStats {
  int64_t tokens = 0;            // tokens through the model (counted at the first layer)
  int64_t gpu_neurons = 0;       // Σ neurons computed by the GPU parts
  int64_t cpu_neurons = 0;       // Σ neurons computed by the CPU parts
  double gpu_seconds = 0;        // the GPU parts' own time
  double cpu_seconds = 0;        // the CPU parts' time
  double wait_seconds = 0;       // time the calling thread blocked on the GPU parts
  double select_seconds = 0;     // the selector (predictor)
  int64_t synchronisations = 0;  // layers that waited for a GPU part

  // Fraction of the computed neurons that the GPU parts computed (0 when none was computed).
  double HotCoverage() const;
};

// The two parts of one layer; either may be null (that side has no neurons).
struct HybridLayerParts {
  std::unique_ptr<FfnPart> gpu;
  std::unique_ptr<FfnPart> cpu;
};

class HybridFfn : public FfnStrategy {
 public:
  // `layers` has one entry per model layer; `selector` may be null (every neuron).
  HybridFfn(const Model& model, std::vector<HybridLayerParts> layers,
            std::shared_ptr<NeuronSelector> selector);

  std::string_view name() const override { return "hybrid"; }
  absl::StatusOr<FfnCallStats> Forward(const FfnCall& call) override;

  const HybridFfnStats& stats() const { return stats_; }
  void ResetStats() { stats_ = {}; }
  // The GPU parts' backend ("cuda", or "cpu" when a CPU stands in), "none" when no layer has one.
  std::string_view gpu_backend() const;
  const HybridLayerParts& layer(int64_t l) const { return layers_[static_cast<size_t>(l)]; }

 private:
  const Model& model_;
  std::vector<HybridLayerParts> layers_;
  std::shared_ptr<NeuronSelector> selector_;
  SelectedNeurons active_;
  HybridFfnStats stats_;
};

// Builds a layer's GPU part over its plan neurons (ascending, non-empty).
using GpuPartFactory = std::function<absl::StatusOr<std::unique_ptr<FfnPart>>(
    int64_t layer, std::vector<int32_t> neurons)>;

// The neurons of [0, n_ff) that are not in `part` (ascending; `part` ascending).
std::vector<int32_t> ComplementNeurons(std::span<const int32_t> part, int64_t n_ff);

// A plan for another model: its digest, layer count or FFN width differ from the model's. The
// message names the plan's file (`plan_path`) and what differs.
absl::Status CheckPlanMatchesModel(const PlacementPlan& plan, const Model& model,
                                   const std::string& plan_path);

// A HybridFfn over a per-layer partition: gpu_neurons[l] (ascending) to the GPU part built by
// `gpu_factory` (null: a CpuFfnPart standing in for the GPU), the rest to a CpuFfnPart. `firing`
// (null: none) is the calibrated thresholds the CpuFfnParts apply; the CUDA part does not apply
// them (yet).
absl::StatusOr<std::shared_ptr<HybridFfn>> BuildHybridFfn(
    const Model& model, const std::vector<std::vector<int32_t>>& gpu_neurons,
    const GpuPartFactory& gpu_factory, std::shared_ptr<NeuronSelector> selector,
    std::shared_ptr<const FiringThresholds> firing = nullptr);

}  // namespace pinfer
