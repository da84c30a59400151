#include "tools/solve_placement/greedy_placement.h"

#include <algorithm>
#include <queue>

namespace pinfer {
namespace {

struct Unit {
  double value_per_byte;
  int64_t layer;  // -1: classifier
  bool attention;
  bool operator<(const Unit& o) const {
    if (value_per_byte != o.value_per_byte) return value_per_byte < o.value_per_byte;
    return layer > o.layer;  // deterministic: lower layers first on ties
  }
};

// The value of `mass` served by the GPU: coverage - the mass; latency - the CPU time it takes
// off (plus, when a layer opens, its predictor's CPU time, since the predictor moves along).
double MassValue(const PlacementProblem& problem, size_t layer, double mass, bool opening) {
  if (problem.objective == Objective::kCoverage) return mass;
  const LayerProblem& l = problem.layers[layer];
  double seconds =
      mass * static_cast<double>(l.neuron_bytes) / problem.hardware.cpu_sparse_bandwidth;
  if (opening) seconds += static_cast<double>(l.predictor_bytes) / problem.hardware.cpu_bandwidth;
  return seconds;
}

// A layer's first unit is the prefix of at least `min_share_groups` groups that, with the
// layer's predictor, has the most value per byte (so a large predictor does not make a layer look
// worse than its hottest groups are); then one group at a time.
int64_t OpeningGroups(const PlacementProblem& problem, const LayerGroups& g, size_t layer) {
  const double nb = static_cast<double>(problem.layers[layer].neuron_bytes);
  const double predictor = static_cast<double>(problem.layers[layer].predictor_bytes);
  double mass = 0, neurons = 0, best_ratio = -1;
  int64_t best = g.min_share_groups;
  for (int64_t j = 1; j <= g.groups(); ++j) {
    mass += g.group_mass[static_cast<size_t>(j - 1)];
    neurons += g.group_neurons[static_cast<size_t>(j - 1)];
    const double ratio = MassValue(problem, layer, mass, true) / (neurons * nb + predictor);
    if (j >= g.min_share_groups && ratio > best_ratio) {
      best_ratio = ratio;
      best = j;
    }
  }
  return best;
}

int64_t NextUnitGroups(size_t layer, int64_t placed, const std::vector<int64_t>& opening) {
  return placed == 0 ? opening[layer] : 1;
}

uint64_t UnitBytes(const PlacementProblem& problem, const std::vector<LayerGroups>& groups,
                   size_t layer, int64_t placed, const std::vector<int64_t>& opening) {
  const int64_t count = NextUnitGroups(layer, placed, opening);
  uint64_t neurons = 0;
  for (int64_t g = placed; g < placed + count; ++g) {
    neurons += static_cast<uint64_t>(groups[layer].group_neurons[static_cast<size_t>(g)]);
  }
  uint64_t bytes = neurons * problem.layers[layer].neuron_bytes;
  if (placed == 0) bytes += problem.layers[layer].predictor_bytes;
  return bytes;
}

double UnitValue(const PlacementProblem& problem, const std::vector<LayerGroups>& groups,
                 size_t layer, int64_t placed, const std::vector<int64_t>& opening) {
  const int64_t count = NextUnitGroups(layer, placed, opening);
  double mass = 0;
  for (int64_t g = placed; g < placed + count; ++g) {
    mass += groups[layer].group_mass[static_cast<size_t>(g)];
  }
  return MassValue(problem, layer, mass, placed == 0);
}

double DenseSaving(const PlacementProblem& problem, double bytes_read) {
  const HardwareModel& hw = problem.hardware;
  return bytes_read / hw.cpu_bandwidth - bytes_read / hw.gpu_bandwidth - hw.gpu_layer_overhead_s;
}

GroupPlacement Fill(const PlacementProblem& problem, const std::vector<LayerGroups>& groups,
                    bool naive) {
  const size_t L = problem.layers.size();
  GroupPlacement p;
  p.ffn_groups.assign(L, 0);
  p.attention_on_gpu.assign(L, 0);
  uint64_t left = problem.budget_bytes - problem.MinimumBytes();
  std::vector<int64_t> opening(L);
  for (size_t l = 0; l < L; ++l) {
    opening[l] = naive ? groups[l].min_share_groups : OpeningGroups(problem, groups[l], l);
  }
  std::priority_queue<Unit> queue;
  auto push_group = [&](size_t l) {
    const int64_t placed = p.ffn_groups[l];
    if (placed >= groups[l].groups()) return;
    queue.push({UnitValue(problem, groups, l, placed, opening) /
                    static_cast<double>(UnitBytes(problem, groups, l, placed, opening)),
                static_cast<int64_t>(l), false});
  };
  for (size_t l = 0; l < L; ++l) push_group(l);
  if (problem.objective == Objective::kLatency) {
    for (size_t l = 0; l < L; ++l) {
      const LayerProblem& layer = problem.layers[l];
      const uint64_t bytes = layer.attention_bytes + layer.kv_bytes;
      const double saving =
          DenseSaving(problem, static_cast<double>(layer.attention_bytes + layer.kv_read_bytes));
      if (saving > 0 && bytes > 0) {
        queue.push({saving / static_cast<double>(bytes), static_cast<int64_t>(l), true});
      }
    }
    const double saving = DenseSaving(problem, static_cast<double>(problem.output_bytes));
    if (saving > 0 && problem.output_bytes > 0) {
      queue.push({saving / static_cast<double>(problem.output_bytes), -1, false});
    }
  }
  while (!queue.empty()) {
    const Unit u = queue.top();
    queue.pop();
    if (u.layer < 0) {
      if (problem.output_bytes <= left) {
        left -= problem.output_bytes;
        p.output_on_gpu = true;
      }
      continue;
    }
    const size_t l = static_cast<size_t>(u.layer);
    if (u.attention) {
      const uint64_t bytes = problem.layers[l].attention_bytes + problem.layers[l].kv_bytes;
      if (bytes <= left) {
        left -= bytes;
        p.attention_on_gpu[l] = 1;
      }
      continue;
    }
    const uint64_t bytes = UnitBytes(problem, groups, l, p.ffn_groups[l], opening);
    if (bytes <= left) {
      left -= bytes;
      p.ffn_groups[l] += NextUnitGroups(l, p.ffn_groups[l], opening);
      push_group(l);
    }
  }
  return p;
}

}  // namespace

uint64_t PlacementBytes(const PlacementProblem& problem, const std::vector<LayerGroups>& groups,
                        const GroupPlacement& placement) {
  uint64_t bytes = problem.MinimumBytes();
  for (size_t l = 0; l < problem.layers.size(); ++l) {
    const LayerProblem& layer = problem.layers[l];
    const int64_t n = placement.ffn_groups[l];
    if (n > 0) {
      bytes += static_cast<uint64_t>(groups[l].NeuronsInFirst(n)) * layer.neuron_bytes +
               layer.predictor_bytes;
    }
    if (placement.attention_on_gpu[l]) bytes += layer.attention_bytes + layer.kv_bytes;
  }
  if (placement.output_on_gpu) bytes += problem.output_bytes;
  return bytes;
}

GroupPlacement GreedyPlacement(const PlacementProblem& problem,
                               const std::vector<LayerGroups>& groups, bool naive) {
  GroupPlacement p = Fill(problem, groups, naive);
  if (problem.objective == Objective::kCoverage) FillLeftoverWithDense(problem, groups, p);
  return p;
}

void FillLeftoverWithDense(const PlacementProblem& problem, const std::vector<LayerGroups>& groups,
                           GroupPlacement& placement) {
  const uint64_t used = PlacementBytes(problem, groups, placement);
  if (used >= problem.budget_bytes) return;
  uint64_t left = problem.budget_bytes - used;
  struct Dense {
    double read_per_byte;
    int64_t layer;  // -1: classifier
  };
  std::vector<Dense> dense;
  for (size_t l = 0; l < problem.layers.size(); ++l) {
    const LayerProblem& layer = problem.layers[l];
    const uint64_t bytes = layer.attention_bytes + layer.kv_bytes;
    if (placement.attention_on_gpu[l] || bytes == 0) continue;
    dense.push_back({static_cast<double>(layer.attention_bytes + layer.kv_read_bytes) /
                         static_cast<double>(bytes),
                     static_cast<int64_t>(l)});
  }
  if (!placement.output_on_gpu && problem.output_bytes > 0) dense.push_back({1.0, -1});
  std::stable_sort(dense.begin(), dense.end(), [](const Dense& a, const Dense& b) {
    return a.read_per_byte > b.read_per_byte;
  });
  for (const Dense& d : dense) {
    if (d.layer < 0) {
      if (problem.output_bytes <= left) {
        left -= problem.output_bytes;
        placement.output_on_gpu = true;
      }
      continue;
    }
    const LayerProblem& layer = problem.layers[static_cast<size_t>(d.layer)];
    const uint64_t bytes = layer.attention_bytes + layer.kv_bytes;
    if (bytes <= left) {
      left -= bytes;
      placement.attention_on_gpu[static_cast<size_t>(d.layer)] = 1;
    }
  }
}

}  // namespace pinfer
