#include "tools/solve_placement/synthetic_problem.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "tools/solve_placement/memory_accounting.h"

namespace pinfer {
namespace {

std::vector<double> LayerCurve(int64_t n_ff, double alpha, double density) {
  std::vector<double> power(static_cast<size_t>(n_ff));
  for (int64_t r = 0; r < n_ff; ++r) power[static_cast<size_t>(r)] = std::pow(r + 1.0, -alpha);
  auto mean_for = [&](double c) {
    double sum = 0;
    for (double v : power) sum += std::min(1.0, c * v);
    return sum / static_cast<double>(n_ff);
  };
  double lo = 0, hi = 1;
  while (mean_for(hi) < density && hi < 1e12) hi *= 2;
  for (int i = 0; i < 60; ++i) {
    const double mid = 0.5 * (lo + hi);
    (mean_for(mid) < density ? lo : hi) = mid;
  }
  std::vector<double> f(static_cast<size_t>(n_ff));
  for (int64_t r = 0; r < n_ff; ++r) f[r] = std::min(1.0, hi * power[static_cast<size_t>(r)]);
  return f;
}

}  // namespace

std::vector<std::vector<float>> PowerLawFrequencies(int64_t n_layers, int64_t n_ff,
                                                    const PowerLawProfile& profile) {
  std::mt19937_64 rng(profile.seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::vector<std::vector<float>> out(static_cast<size_t>(n_layers));
  const double tokens = static_cast<double>(profile.tokens);
  for (int64_t l = 0; l < n_layers; ++l) {
    const double density = profile.density * (0.6 + 0.8 * uniform(rng));
    const double alpha = profile.alpha * (0.8 + 0.4 * uniform(rng));
    const std::vector<double> curve = LayerCurve(n_ff, alpha, std::min(density, 1.0));
    std::vector<int32_t> neuron_of_rank(static_cast<size_t>(n_ff));
    std::iota(neuron_of_rank.begin(), neuron_of_rank.end(), 0);
    std::shuffle(neuron_of_rank.begin(), neuron_of_rank.end(), rng);
    std::vector<float>& f = out[static_cast<size_t>(l)];
    f.resize(static_cast<size_t>(n_ff));
    for (int64_t r = 0; r < n_ff; ++r) {
      f[static_cast<size_t>(neuron_of_rank[static_cast<size_t>(r)])] =
          static_cast<float>(std::round(curve[static_cast<size_t>(r)] * tokens) / tokens);
    }
  }
  return out;
}

absl::StatusOr<PlacementProblem> SyntheticProblem(const ModelConfig& config,
                                                  const SyntheticOptions& options) {
  absl::StatusOr<uint64_t> row = RowBytes(options.dtype, static_cast<uint64_t>(config.dim));
  if (!row.ok()) return row.status();
  absl::StatusOr<uint64_t> q_row = RowBytes(options.dtype, static_cast<uint64_t>(config.q_dim()));
  if (!q_row.ok()) return q_row.status();
  PlacementProblem p;
  p.dim = config.dim;
  p.group_size = options.group_size;
  p.budget_bytes = options.budget_bytes;
  p.workspace_bytes = WorkspaceBytes(config, options.context, options.batch);
  // (a LayerNorm has a bias beside its weight)
  p.norm_bytes = 4 * static_cast<uint64_t>(config.dim) * (2 * config.n_layers + 1) *
                 (config.norm == NormKind::kLayer ? 2 : 1);
  p.output_bytes = static_cast<uint64_t>(config.vocab_size) * *row;
  p.objective = options.objective;
  p.hardware = options.hardware;
  std::vector<std::vector<float>> freq =
      PowerLawFrequencies(config.n_layers, config.n_ff, options.profile);
  const uint64_t kv = KvCacheBytesPerLayer(config, options.context);
  const uint64_t predictor = EstimatedPredictorBytesPerLayer(config, DefaultPredictorRank(config));
  for (int64_t l = 0; l < config.n_layers; ++l) {
    LayerProblem layer;
    layer.frequency = std::move(freq[static_cast<size_t>(l)]);
    layer.neuron_bytes = (config.ffn_gated ? 3 : 2) * *row;
    layer.attention_bytes = static_cast<uint64_t>(config.q_dim() + 2 * config.kv_dim()) * *row +
                            static_cast<uint64_t>(config.dim) * *q_row;
    layer.kv_bytes = kv;
    layer.kv_read_bytes = kv / 2;
    layer.predictor_bytes = predictor;
    p.layers.push_back(std::move(layer));
  }
  return p;
}

}  // namespace pinfer
