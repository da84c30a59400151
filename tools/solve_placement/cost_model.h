// Evaluates a placement from its neuron lists alone: GPU bytes per part, FFN coverage and the
// estimated decode time per token; and checks its feasibility. This is independent of the
// solvers (which work on groups and a MIP's columns), so a solution is verified before it is
// written and the brute-force tests compare against the same figures.
//
// Per-token time model (decode, batch 1; all reads are bytes / bandwidth):
//   attention of layer l   GPU: (attn + kv_read) / gpu_bw + overhead      CPU: (attn + kv_read) /
//   cpu_bw FFN of layer l         GPU part: predictor / gpu_bw + overhead + hot_neurons *
//   neuron_bytes / gpu_bw
//                          (an upper bound: every GPU row is counted as read, although the runtime
//                          skips predicted-inactive ones; it keeps the model linear in the count)
//                          CPU part: cold_mass * neuron_bytes / cpu_sparse_bw
//                                    (+ predictor / cpu_bw when the layer has no GPU neurons)
//                          the two run concurrently: max(GPU part, CPU part)
//   synchronisation        SyncSeconds(dim) for every layer with work on both devices (a layer
//                          wholly on the GPU - attention and all neurons - or wholly on the CPU
//                          needs none; hand-overs between such whole layers are not counted)
//   classifier             output / gpu_bw + overhead on the GPU, output / cpu_bw on the CPU
// cold_mass is the summed firing frequency of the CPU neurons: a neuron that fires reads its
// gate, up and down_t rows; the predictor is assumed exact.
#pragma once

#include <vector>

#include "absl/status/status.h"
#include "runtime/model/placement_plan.h"
#include "tools/solve_placement/placement_problem.h"

namespace pinfer {

struct PlacementFigures {
  PlanBytes bytes;
  double coverage = 0;       // GPU-served share of all FFN activations (profile-weighted)
  double latency_s = 0;      // estimated decode time per token
  double gpu_s = 0;          // GPU busy time per token
  double cpu_s = 0;          // CPU busy time per token
  double sync_s = 0;         // synchronisation time per token
  int64_t split_layers = 0;  // layers with work on both devices
  std::vector<double> layer_coverage;
};

PlacementFigures Evaluate(const PlacementProblem& problem, const NeuronPlacement& placement);

// Every rule a plan must satisfy: shapes, neuron lists sorted, unique and in range, GPU bytes
// within the budget, and each layer's GPU neuron count zero or at least its minimum share.
absl::Status CheckFeasible(const PlacementProblem& problem, const std::vector<LayerGroups>& groups,
                           const NeuronPlacement& placement);

}  // namespace pinfer
