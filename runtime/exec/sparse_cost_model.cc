#include "runtime/exec/sparse_cost_model.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <random>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/cpu/kernels.h"

namespace pinfer {
namespace {

constexpr double kLowDensity = 0.1;
constexpr double kHighDensity = 0.7;  // near the crossover: a short extrapolation
constexpr int kReps = 3;  // the fastest of kReps timed passes counts
constexpr size_t kMeasuredLayers = 4;

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Ascending random neurons, `density` of n_ff of them (at least one).
std::vector<int32_t> RandomNeurons(int64_t n_ff, double density, uint32_t seed) {
  std::mt19937 rng(seed);
  std::bernoulli_distribution keep(density);
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < n_ff; ++i) {
    if (keep(rng)) ids.push_back(static_cast<int32_t>(i));
  }
  if (ids.empty()) ids.push_back(0);
  return ids;
}

using Signature = std::tuple<DType, DType, DType, int64_t, int64_t>;

Signature SignatureOf(const LayerWeights& w) {
  return {w.ffn_gate.dtype, w.ffn_up.dtype, w.ffn_down_t.dtype, w.ffn_gate.rows, w.ffn_gate.cols};
}

CrossoverMeasurement Measure(const Model& model, const std::vector<int64_t>& layers) {
  const int64_t dim = model.config().dim, n_ff = model.config().n_ff;
  std::vector<float> x(static_cast<size_t>(dim)), y(static_cast<size_t>(dim), 0.0f);
  std::vector<float> g(static_cast<size_t>(n_ff)), u(static_cast<size_t>(n_ff));
  std::vector<float> a(static_cast<size_t>(n_ff));
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  for (float& v : x) v = normal(rng);
  for (float& v : a) v = normal(rng);  // no zeros: the dense down product reads every row
  size_t next_layer = 0;
  auto layer = [&]() -> const LayerWeights& {
    return model.layer(layers[next_layer++ % layers.size()]);
  };
  auto dense = [&] {
    const LayerWeights& w = layer();
    const auto start = std::chrono::steady_clock::now();
    cpu::MatVec(w.ffn_gate, x.data(), g.data());
    cpu::MatVec(w.ffn_up, x.data(), u.data());
    cpu::MatVecTransposedAccumulate(w.ffn_down_t, a.data(), y.data());
    return Seconds(start);
  };
  auto sparse = [&](const std::vector<int32_t>& ids) {
    const LayerWeights& w = layer();
    const int64_t k = static_cast<int64_t>(ids.size());
    const auto start = std::chrono::steady_clock::now();
    cpu::GatherMatMul(w.ffn_gate, ids.data(), k, x.data(), 1, g.data());
    cpu::GatherMatMul(w.ffn_up, ids.data(), k, x.data(), 1, u.data());
    cpu::GatherMatMulTransposedAccumulate(w.ffn_down_t, ids.data(), k, a.data(), 1, y.data());
    return Seconds(start);
  };
  const std::vector<int32_t> low = RandomNeurons(n_ff, kLowDensity, 2);
  const std::vector<int32_t> high = RandomNeurons(n_ff, kHighDensity, 3);
  CrossoverMeasurement m;
  m.low_density = static_cast<double>(low.size()) / n_ff;
  m.high_density = static_cast<double>(high.size()) / n_ff;
  m.dense_seconds = m.low_seconds = m.high_seconds = std::numeric_limits<double>::infinity();
  // Warm-up: every layer used once (page tables, thread pool), so that no timed pass pays first
  // touches.
  for (size_t i = 0; i < layers.size(); ++i) dense();
  for (int rep = 0; rep < kReps; ++rep) {
    m.dense_seconds = std::min(m.dense_seconds, dense());
    m.low_seconds = std::min(m.low_seconds, sparse(low));
    m.high_seconds = std::min(m.high_seconds, sparse(high));
  }
  m.crossover = CrossoverDensity(m);
  return m;
}

}  // namespace

SparseCostModel SparseCostModel::Fixed(int64_t n_layers, double crossover) {
  SparseCostModel model;
  model.crossover.assign(static_cast<size_t>(n_layers), crossover);
  model.source = absl::StrFormat("fixed crossover density %.3f", crossover);
  return model;
}

double CrossoverDensity(const CrossoverMeasurement& m) {
  const double slope = (m.high_seconds - m.low_seconds) / (m.high_density - m.low_density);
  if (!(slope > 0.0)) {
    // Timing noise on tiny layers: no measurable growth with the density. Sparse wins where it
    // was measured to win.
    return m.high_seconds < m.dense_seconds  ? m.high_density
           : m.low_seconds < m.dense_seconds ? m.low_density
                                             : 0.0;
  }
  const double intercept = m.low_seconds - slope * m.low_density;
  return std::clamp((m.dense_seconds - intercept) / slope, 0.0, 1.0);
}

absl::StatusOr<SparseCostModel> MeasureSparseCostModel(const Model& model) {
  const int64_t n_layers = model.n_layers();
  if (n_layers == 0 || model.config().n_ff == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(model.path(), ": no FFN layers to measure the sparse cost model on"));
  }
  std::map<Signature, std::vector<int64_t>> groups;
  for (int64_t l = 0; l < n_layers; ++l) groups[SignatureOf(model.layer(l))].push_back(l);
  SparseCostModel cost;
  cost.crossover.assign(static_cast<size_t>(n_layers), 0.0);
  std::vector<std::string> parts;
  for (const auto& [signature, layers] : groups) {
    // At most kMeasuredLayers of the group's layers are timed (enough to leave the caches cold
    // between passes; the load stays short on deep models).
    const std::vector<int64_t> timed(
        layers.begin(), layers.begin() + std::min<size_t>(layers.size(), kMeasuredLayers));
    const CrossoverMeasurement m = Measure(model, timed);
    for (int64_t l : layers) cost.crossover[static_cast<size_t>(l)] = m.crossover;
    cost.measurements.push_back(m);
    parts.push_back(absl::StrFormat(
        "%s: dense %.3f ms, sparse %.3f ms at %.0f%% and %.3f ms at %.0f%% -> crossover %.2f",
        DTypeName(std::get<0>(signature)), m.dense_seconds * 1e3, m.low_seconds * 1e3,
        m.low_density * 100, m.high_seconds * 1e3, m.high_density * 100, m.crossover));
  }
  cost.source = absl::StrCat("measured at load (one token, ", cpu::Threads(), " threads; ",
                             absl::StrJoin(parts, "; "), ")");
  return cost;
}

}  // namespace pinfer
