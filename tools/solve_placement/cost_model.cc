#include "tools/solve_placement/cost_model.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace pinfer {

PlacementFigures Evaluate(const PlacementProblem& problem, const NeuronPlacement& placement) {
  const HardwareModel& hw = problem.hardware;
  const double sync = hw.SyncSeconds(problem.dim);
  PlacementFigures f;
  f.bytes.workspace = problem.workspace_bytes;
  f.bytes.norms = problem.norm_bytes;
  double all_mass = 0, gpu_mass = 0;
  for (size_t l = 0; l < problem.layers.size(); ++l) {
    const LayerProblem& layer = problem.layers[l];
    const std::vector<int32_t>& hot = placement.gpu_neurons[l];
    const bool attention_gpu = placement.attention_on_gpu[l] != 0;
    double layer_mass = 0, layer_hot_mass = 0;
    for (float v : layer.frequency) layer_mass += v;
    for (int32_t i : hot) layer_hot_mass += layer.frequency[static_cast<size_t>(i)];
    all_mass += layer_mass;
    gpu_mass += layer_hot_mass;
    f.layer_coverage.push_back(layer_mass > 0 ? layer_hot_mass / layer_mass : 0.0);

    const double attention_read = static_cast<double>(layer.attention_bytes + layer.kv_read_bytes);
    if (attention_gpu) {
      f.bytes.attention += layer.attention_bytes;
      f.bytes.kv += layer.kv_bytes;
      const double t = attention_read / hw.gpu_bandwidth + hw.gpu_layer_overhead_s;
      f.gpu_s += t;
      f.latency_s += t;
    } else {
      const double t = attention_read / hw.cpu_bandwidth;
      f.cpu_s += t;
      f.latency_s += t;
    }

    const double nb = static_cast<double>(layer.neuron_bytes);
    const double predictor = static_cast<double>(layer.predictor_bytes);
    double gpu_ffn = 0, cpu_ffn = (layer_mass - layer_hot_mass) * nb / hw.cpu_sparse_bandwidth;
    if (!hot.empty()) {
      f.bytes.ffn += hot.size() * layer.neuron_bytes;
      f.bytes.predictor += layer.predictor_bytes;
      gpu_ffn = predictor / hw.gpu_bandwidth + hw.gpu_layer_overhead_s +
                static_cast<double>(hot.size()) * nb / hw.gpu_bandwidth;
    } else {
      cpu_ffn += predictor / hw.cpu_bandwidth;
    }
    f.gpu_s += gpu_ffn;
    f.cpu_s += cpu_ffn;
    f.latency_s += std::max(gpu_ffn, cpu_ffn);

    const bool whole_gpu = attention_gpu && static_cast<int64_t>(hot.size()) == layer.n_ff();
    const bool whole_cpu = !attention_gpu && hot.empty();
    if (!whole_gpu && !whole_cpu) {
      f.sync_s += sync;
      f.latency_s += sync;
      ++f.split_layers;
    }
  }
  const double output = static_cast<double>(problem.output_bytes);
  if (placement.output_on_gpu) {
    f.bytes.output = problem.output_bytes;
    const double t = output / hw.gpu_bandwidth + hw.gpu_layer_overhead_s;
    f.gpu_s += t;
    f.latency_s += t;
  } else {
    const double t = output / hw.cpu_bandwidth;
    f.cpu_s += t;
    f.latency_s += t;
  }
  f.coverage = all_mass > 0 ? gpu_mass / all_mass : 0.0;
  return f;
}

absl::Status CheckFeasible(const PlacementProblem& problem, const std::vector<LayerGroups>& groups,
                           const NeuronPlacement& placement) {
  const size_t L = problem.layers.size();
  if (placement.gpu_neurons.size() != L || placement.attention_on_gpu.size() != L ||
      groups.size() != L) {
    return absl::InternalError("placement does not have one entry per layer");
  }
  uint64_t bytes = problem.MinimumBytes();
  for (size_t l = 0; l < L; ++l) {
    const LayerProblem& layer = problem.layers[l];
    const std::vector<int32_t>& hot = placement.gpu_neurons[l];
    for (size_t i = 0; i < hot.size(); ++i) {
      if (hot[i] < 0 || hot[i] >= layer.n_ff() || (i > 0 && hot[i] <= hot[i - 1])) {
        return absl::InternalError(absl::StrCat(
            "placement check: layer ", l, " GPU neurons are not sorted, unique and in range"));
      }
    }
    const int64_t min_neurons = groups[l].NeuronsInFirst(groups[l].min_share_groups);
    if (!hot.empty() && static_cast<int64_t>(hot.size()) < min_neurons) {
      return absl::InternalError(absl::StrCat("placement check: layer ", l, " has ", hot.size(),
                                              " GPU neurons, below its minimum share of ",
                                              min_neurons));
    }
    if (!hot.empty()) bytes += hot.size() * layer.neuron_bytes + layer.predictor_bytes;
    if (placement.attention_on_gpu[l] > 1) {
      return absl::InternalError(absl::StrCat("placement check: layer ", l, " flag is not 0/1"));
    }
    if (placement.attention_on_gpu[l]) bytes += layer.attention_bytes + layer.kv_bytes;
  }
  if (placement.output_on_gpu) bytes += problem.output_bytes;
  if (bytes > problem.budget_bytes) {
    return absl::InternalError(absl::StrCat(
        "placement check: ", bytes, " GPU bytes exceed the budget of ", problem.budget_bytes));
  }
  return absl::OkStatus();
}

}  // namespace pinfer
