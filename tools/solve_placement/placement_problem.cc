#include "tools/solve_placement/placement_problem.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "format/strings.h"

namespace pinfer {

std::string_view ObjectiveName(Objective objective) {
  return objective == Objective::kCoverage ? "coverage" : "latency";
}

absl::StatusOr<Objective> ParseObjective(std::string_view name) {
  if (name == "coverage") return Objective::kCoverage;
  if (name == "latency") return Objective::kLatency;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown objective '", Sv(name), "' (coverage or latency)"));
}

uint64_t PlacementProblem::EverythingBytes() const {
  uint64_t total = MinimumBytes() + output_bytes;
  for (const LayerProblem& l : layers) {
    total += l.attention_bytes + l.kv_bytes + l.predictor_bytes +
             static_cast<uint64_t>(l.n_ff()) * l.neuron_bytes;
  }
  return total;
}

absl::Status PlacementProblem::Validate() const {
  if (layers.empty()) return absl::InvalidArgumentError("the placement problem has no layers");
  if (dim <= 0) return absl::InvalidArgumentError("the hidden size must be positive");
  if (group_size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("the group size must be positive, not ", group_size));
  }
  for (size_t l = 0; l < layers.size(); ++l) {
    const LayerProblem& layer = layers[l];
    if (layer.frequency.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("layer ", l, " has no FFN neurons"));
    }
    if (layer.neuron_bytes == 0) {
      return absl::InvalidArgumentError(absl::StrCat("layer ", l, " has zero bytes per neuron"));
    }
    for (float f : layer.frequency) {
      if (!(f >= 0.0f && f <= 1.0f)) {
        return absl::InvalidArgumentError(
            absl::StrCat("layer ", l, " has a firing frequency outside [0, 1]: ", f));
      }
    }
  }
  return hardware.Validate();
}

int64_t LayerGroups::NeuronsInFirst(int64_t n) const {
  int64_t neurons = 0;
  for (int64_t g = 0; g < n; ++g) neurons += group_neurons[static_cast<size_t>(g)];
  return neurons;
}

double LayerGroups::MassOfFirst(int64_t n) const {
  double mass = 0;
  for (int64_t g = 0; g < n; ++g) mass += group_mass[static_cast<size_t>(g)];
  return mass;
}

std::vector<LayerGroups> BuildGroups(const PlacementProblem& problem) {
  std::vector<LayerGroups> result(problem.layers.size());
  const double sync = problem.hardware.SyncSeconds(problem.dim);
  for (size_t l = 0; l < problem.layers.size(); ++l) {
    const LayerProblem& layer = problem.layers[l];
    LayerGroups& g = result[l];
    const int64_t n_ff = layer.n_ff();
    g.order.resize(static_cast<size_t>(n_ff));
    std::iota(g.order.begin(), g.order.end(), 0);
    std::stable_sort(g.order.begin(), g.order.end(), [&](int32_t a, int32_t b) {
      return layer.frequency[static_cast<size_t>(a)] > layer.frequency[static_cast<size_t>(b)];
    });
    for (int64_t start = 0; start < n_ff; start += problem.group_size) {
      const int64_t end = std::min(n_ff, start + problem.group_size);
      double mass = 0;
      for (int64_t i = start; i < end; ++i) {
        mass += layer.frequency[static_cast<size_t>(g.order[static_cast<size_t>(i)])];
      }
      g.group_neurons.push_back(static_cast<int32_t>(end - start));
      g.group_mass.push_back(mass);
      g.total_mass += mass;
    }
    // Minimum share: the CPU time the first n groups take off the CPU must exceed one
    // synchronisation. (The GPU side runs concurrently and is not on the critical path for a
    // small share.)
    const double seconds_per_mass =
        static_cast<double>(layer.neuron_bytes) / problem.hardware.cpu_sparse_bandwidth;
    g.min_share_groups = g.groups();
    double mass = 0;
    for (int64_t n = 1; n <= g.groups(); ++n) {
      mass += g.group_mass[static_cast<size_t>(n - 1)];
      if (mass * seconds_per_mass > sync) {
        g.min_share_groups = n;
        break;
      }
    }
  }
  return result;
}

NeuronPlacement ToNeurons(const std::vector<LayerGroups>& groups, const GroupPlacement& placement) {
  NeuronPlacement out;
  out.attention_on_gpu = placement.attention_on_gpu;
  out.output_on_gpu = placement.output_on_gpu;
  out.gpu_neurons.resize(groups.size());
  for (size_t l = 0; l < groups.size(); ++l) {
    const int64_t count = groups[l].NeuronsInFirst(placement.ffn_groups[l]);
    std::vector<int32_t>& neurons = out.gpu_neurons[l];
    neurons.assign(groups[l].order.begin(), groups[l].order.begin() + count);
    std::sort(neurons.begin(), neurons.end());
  }
  return out;
}

}  // namespace pinfer
