// The placement problem as pure data: shapes, bytes, firing frequencies, the budget and the
// hardware model. It is built from model.pi + profile by model_problem.h, or from synthetic shapes
// (synthetic_problem.h) so that tests and benchmarks can pose 70B-shape problems without 40 GB
// files.
//
// Neurons are placed in groups: per layer, neurons sorted by decreasing firing frequency (ties by
// index) are cut into groups of `group_size` (the last group may be smaller), and the GPU holds a
// prefix of that order: the layer's n hottest groups. A group's "mass" is the sum of its
// neurons' frequencies, the expected number of its neurons firing per token; masses decrease
// along the order, so the GPU-served mass of a layer is a concave piecewise-linear function of n.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tools/solve_placement/hardware_model.h"

namespace pinfer {

enum class Objective {
  kCoverage,  // maximize the FFN activation mass served by the GPU (PowerInfer's objective)
  kLatency,   // minimize the estimated decode time per token (cost_model.h)
};
std::string_view ObjectiveName(Objective objective);
absl::StatusOr<Objective> ParseObjective(std::string_view name);

struct LayerProblem {
  std::vector<float> frequency;  // [n_ff] firing frequency of each neuron, in [0, 1]
  uint64_t neuron_bytes = 0;     // gate + up + down_t rows of one neuron
  uint64_t attention_bytes = 0;  // attn_q, attn_k, attn_v, attn_output
  uint64_t kv_bytes = 0;         // K and V for `context` positions, f16, on the GPU
  uint64_t kv_read_bytes = 0;    // KV bytes one decode step reads on average (context / 2)
  uint64_t predictor_bytes = 0;  // the layer's activation predictor

  int64_t n_ff() const { return static_cast<int64_t>(frequency.size()); }
};

struct PlacementProblem {
  std::vector<LayerProblem> layers;
  int64_t dim = 0;  // hidden size: what a synchronisation exchanges
  int64_t group_size = 64;
  uint64_t budget_bytes = 0;
  uint64_t workspace_bytes = 0;  // always on the GPU
  uint64_t norm_bytes = 0;       // always on the GPU
  uint64_t output_bytes = 0;     // the classifier
  Objective objective = Objective::kCoverage;
  HardwareModel hardware;

  // What must be on the GPU whatever the placement: workspace + norms.
  uint64_t MinimumBytes() const { return workspace_bytes + norm_bytes; }
  // Everything on the GPU: the minimum plus every attention, KV cache, FFN, predictor, output.
  uint64_t EverythingBytes() const;
  absl::Status Validate() const;
};

// The groups of one layer and the rules derived from them.
struct LayerGroups {
  std::vector<int32_t> order;          // neuron indices by decreasing frequency
  std::vector<int32_t> group_neurons;  // neurons per group (group_size, the last maybe fewer)
  std::vector<double> group_mass;      // summed frequency per group, non-increasing
  double total_mass = 0;
  // The smallest non-zero number of GPU groups: the layer holds either none or at least this
  // many. It is the first n whose GPU part saves more CPU time than a synchronisation costs
  // (cost_model.h); the whole layer when no n does.
  int64_t min_share_groups = 1;

  int64_t groups() const { return static_cast<int64_t>(group_neurons.size()); }
  int64_t NeuronsInFirst(int64_t n) const;
  double MassOfFirst(int64_t n) const;
};

std::vector<LayerGroups> BuildGroups(const PlacementProblem& problem);

// The decision at group granularity.
struct GroupPlacement {
  std::vector<int64_t> ffn_groups;        // per layer: the first n groups are on the GPU
  std::vector<uint8_t> attention_on_gpu;  // per layer: attention + KV cache
  bool output_on_gpu = false;
};

// The decision as neuron lists, as the plan stores it.
struct NeuronPlacement {
  std::vector<std::vector<int32_t>> gpu_neurons;  // per layer, sorted ascending
  std::vector<uint8_t> attention_on_gpu;
  bool output_on_gpu = false;
};

NeuronPlacement ToNeurons(const std::vector<LayerGroups>& groups, const GroupPlacement& placement);

}  // namespace pinfer
