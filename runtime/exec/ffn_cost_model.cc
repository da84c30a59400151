#include "runtime/exec/ffn_cost_model.h"

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
#include "runtime/cpu/predictor_kernel.h"
#include "runtime/exec/ffn_rows.h"
#include "runtime/model/predictor_weights.h"

namespace pinfer {
namespace {

constexpr double kLowDensity = 0.1;
constexpr double kHighDensity = 0.7;  // near the crossover: a short extrapolation
constexpr int64_t kBatchProbe = 8;    // tokens of the batch measurement
constexpr int kReps = 3;              // the fastest of kReps timed passes counts
constexpr size_t kMeasuredLayers = 4;
// Auto: the predictor (approximate) must cost less than this share of the best exact mode.
constexpr double kPredictorMargin = 0.95;

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

// The density where t_s(ρ, 1) = t_d(1), clamped to [0, 1].
double Crossover(const FfnCostCurve& c, double low_seconds, double high_seconds) {
  if (!(c.sparse_slope > 0.0)) {
    // Timing noise on tiny layers: no measurable growth with the density. Sparse wins where it
    // was measured to win.
    return high_seconds < c.dense_seconds  ? kHighDensity
           : low_seconds < c.dense_seconds ? kLowDensity
                                           : 0.0;
  }
  return std::clamp((c.dense_seconds - c.sparse_base) / c.sparse_slope, 0.0, 1.0);
}

struct Timed {
  FfnCostCurve curve;
  double low_seconds = 0.0, high_seconds = 0.0;
};

Timed Measure(const Model& model, const std::vector<int64_t>& layers) {
  const int64_t dim = model.config().dim, n_ff = model.config().n_ff;
  FfnWorkspace ws;
  ws.capacity = kBatchProbe;
  for (auto* buffer : {&ws.gate, &ws.up, &ws.activations}) {
    buffer->resize(static_cast<size_t>(kBatchProbe * n_ff));
  }
  std::vector<float> x(static_cast<size_t>(kBatchProbe * dim));
  std::vector<float> y(static_cast<size_t>(kBatchProbe * dim), 0.0f);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  for (float& v : x) v = normal(rng);
  // Thresholds no activation exceeds: a gate-first pass then computes the gate rows alone.
  const FiringThresholds nothing_fires{
      model.config().ffn_act,
      std::vector<float>(static_cast<size_t>(model.n_layers()), std::numeric_limits<float>::max())};
  size_t next_layer = 0;
  auto time = [&](const NeuronRows& rows, int64_t n, const FiringThresholds* firing = nullptr) {
    const FfnRowsLayer layer{&model, layers[next_layer++ % layers.size()], firing};
    const auto start = std::chrono::steady_clock::now();
    ComputeFfnRows(layer, x.data(), n, rows, ws, y.data());
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  const std::vector<int32_t> low = RandomNeurons(n_ff, kLowDensity, 2);
  const std::vector<int32_t> high = RandomNeurons(n_ff, kHighDensity, 3);
  const double low_density = static_cast<double>(low.size()) / n_ff;
  const double high_density = static_cast<double>(high.size()) / n_ff;
  constexpr double kInf = std::numeric_limits<double>::infinity();
  double dense = kInf, dense_batch = kInf, low_s = kInf, high_s = kInf, high_batch = kInf;
  double gate = kInf, gate_batch = kInf;
  // Warm-up: every layer used once (page tables, thread pool), so that no timed pass pays first
  // touches.
  for (size_t i = 0; i < layers.size(); ++i) time(NeuronRows::All(), 1);
  for (int rep = 0; rep < kReps; ++rep) {
    dense = std::min(dense, time(NeuronRows::All(), 1));
    low_s = std::min(low_s, time(NeuronRows::Batch(low), 1));
    high_s = std::min(high_s, time(NeuronRows::Batch(high), 1));
    dense_batch = std::min(dense_batch, time(NeuronRows::All(), kBatchProbe));
    high_batch = std::min(high_batch, time(NeuronRows::Batch(high), kBatchProbe));
    gate = std::min(gate, time(NeuronRows::GateFirst(), 1, &nothing_fires));
    gate_batch = std::min(gate_batch, time(NeuronRows::GateFirst(), kBatchProbe, &nothing_fires));
  }
  Timed t;
  FfnCostCurve& c = t.curve;
  c.dense_seconds = dense;
  c.dense_per_token = std::max(0.0, (dense_batch - dense) / (kBatchProbe - 1));
  c.sparse_slope = (high_s - low_s) / (high_density - low_density);
  c.sparse_base = low_s - c.sparse_slope * low_density;
  c.sparse_per_token = std::max(0.0, (high_batch - high_s) / (kBatchProbe - 1) / high_density);
  c.crossover = Crossover(c, low_s, high_s);
  c.gate_seconds = gate;
  c.gate_per_token = std::max(0.0, (gate_batch - gate) / (kBatchProbe - 1));
  const LayerWeights& w = model.layer(layers.front());
  const double row_bytes = static_cast<double>(w.ffn_gate.row_bytes + w.ffn_up.row_bytes +
                                               w.ffn_down_t.row_bytes);
  if (row_bytes > 0) {
    c.up_down_share = static_cast<double>(w.ffn_up.row_bytes + w.ffn_down_t.row_bytes) / row_bytes;
  }
  t.low_seconds = low_s;
  t.high_seconds = high_s;
  return t;
}

// The predictor kernel's time on `layer`'s weights, one token and a batch (the fastest of kReps
// after a warm-up pass).
PredictorCost MeasurePredictor(const PredictorWeights& predictor, int64_t layer) {
  const int64_t dim = predictor.dim;
  std::vector<float> x(static_cast<size_t>(kBatchProbe * dim));
  std::mt19937 rng(4);
  std::normal_distribution<float> normal;
  for (float& v : x) v = normal(rng);
  cpu::PredictorScratch scratch;
  cpu::PredictedActive active;
  const cpu::PredictorView view = predictor.View(layer);
  auto time = [&](int64_t n) {
    const auto start = std::chrono::steady_clock::now();
    cpu::PredictActive(view, x.data(), n, scratch, active);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  time(kBatchProbe);
  double one = std::numeric_limits<double>::infinity(), batch = one;
  for (int rep = 0; rep < kReps; ++rep) {
    one = std::min(one, time(1));
    batch = std::min(batch, time(kBatchProbe));
  }
  return {one, std::max(0.0, (batch - one) / (kBatchProbe - 1))};
}

}  // namespace

const char* AutoModeName(AutoMode mode) {
  switch (mode) {
    case AutoMode::kDense:
      return "dense";
    case AutoMode::kExact:
      return "exact";
    case AutoMode::kPredictor:
      return "predictor";
  }
  return "?";
}

double FfnCostCurve::Exact(double part, double fired, int64_t n) const {
  return part * (gate_seconds + gate_per_token * static_cast<double>(n - 1)) +
         fired * up_down_share *
             (std::max(0.0, sparse_slope) + sparse_per_token * static_cast<double>(n - 1));
}

ModeCost FfnCostModel::Expected(AutoMode mode, int64_t layer, int64_t n,
                                const AutoInputs& in) const {
  const double part = std::clamp(in.part, 0.0, 1.0);
  const double neuron_bytes = in.gate_bytes + in.up_down_bytes;
  ModeCost cost;
  const FfnCostCurve* c = measured() ? &curves[static_cast<size_t>(layer)] : nullptr;
  const double dense_seconds = c == nullptr ? 0.0 : part >= 1.0 ? c->Dense(n) : c->Sparse(part, n);
  switch (mode) {
    case AutoMode::kDense:
      cost.bytes = part * neuron_bytes;
      cost.seconds = dense_seconds;
      break;
    case AutoMode::kExact: {
      const double fired = std::clamp(in.fired, 0.0, part);
      cost.bytes = part * in.gate_bytes + fired * in.up_down_bytes;
      cost.seconds = c == nullptr ? 0.0 : c->Exact(part, fired, n);
      break;
    }
    case AutoMode::kPredictor: {
      const double selected = std::clamp(in.predicted, 0.0, part);
      // Past the crossover the predictor's part falls back to every neuron (Choose).
      cost.bytes = in.predictor_bytes + selected * neuron_bytes;
      const double own =
          layer < static_cast<int64_t>(predictor.size()) ? predictor[static_cast<size_t>(layer)].At(n)
                                                         : 0.0;
      cost.seconds = c == nullptr ? 0.0 : own + std::min(c->Sparse(selected, n), dense_seconds);
      break;
    }
  }
  // Without a measurement the bytes are the cost.
  if (c == nullptr) cost.seconds = cost.bytes;
  return cost;
}

AutoMode FfnCostModel::ChooseMode(int64_t layer, int64_t n, const AutoInputs& in) const {
  const ModeCost dense = Expected(AutoMode::kDense, layer, n, in);
  const ModeCost exact = Expected(AutoMode::kExact, layer, n, in);
  // An unknown firing density is measured by one exact call: it costs at most the gate pass more
  // than dense, and its output is the dense one.
  AutoMode best = in.fired < 0.0 || exact.seconds < dense.seconds ? AutoMode::kExact
                                                                  : AutoMode::kDense;
  const ModeCost& best_cost = best == AutoMode::kExact ? exact : dense;
  if (in.has_predictor) {
    // A predictor must win on time and on bytes, by a margin: one that reads more than it saves
    // never runs, and an approximate selection is not worth a saving within the estimates' noise.
    const ModeCost p = Expected(AutoMode::kPredictor, layer, n, in);
    if (p.seconds < kPredictorMargin * best_cost.seconds &&
        p.bytes < kPredictorMargin * best_cost.bytes) {
      best = AutoMode::kPredictor;
    }
  }
  return best;
}

double FfnCostCurve::Dense(int64_t n) const {
  return dense_seconds + dense_per_token * static_cast<double>(n - 1);
}

double FfnCostCurve::Sparse(double density, int64_t n) const {
  // Below the measured line's intercept the gathered kernels are never cheaper than their base.
  return std::max(0.0, sparse_base) +
         density * (std::max(0.0, sparse_slope) + sparse_per_token * static_cast<double>(n - 1));
}

RowChoice FfnCostModel::Choose(int64_t layer, int64_t n_ff, int64_t part_size, int64_t n,
                               int64_t union_size, int64_t selected_sum) const {
  const double f = static_cast<double>(n_ff);
  if (!measured()) {
    return static_cast<double>(union_size) / static_cast<double>(std::max<int64_t>(1, part_size)) <
                   fixed_crossover
               ? (n > 1 ? fixed_batch : RowChoice::kUnion)
               : RowChoice::kAll;
  }
  const FfnCostCurve& c = curves[static_cast<size_t>(layer)];
  const double all = part_size == n_ff ? c.Dense(n) : c.Sparse(part_size / f, n);
  const double batch_union = c.Sparse(union_size / f, n);
  // Per token: n one-token calls; their densities add up to selected_sum / n_ff.
  const double per_token = static_cast<double>(n) * std::max(0.0, c.sparse_base) +
                           (selected_sum / f) * std::max(0.0, c.sparse_slope);
  if (all <= batch_union && all <= per_token) return RowChoice::kAll;
  return n > 1 && per_token < batch_union ? RowChoice::kPerToken : RowChoice::kUnion;
}

FfnCostModel FfnCostModel::Fixed(double crossover, RowChoice batch) {
  FfnCostModel model;
  model.fixed_crossover = crossover;
  model.fixed_batch = batch;
  model.source = absl::StrFormat("fixed crossover density %.3f", crossover);
  return model;
}

absl::StatusOr<FfnCostModel> MeasureFfnCostModel(const Model& model,
                                                 const PredictorWeights* predictor) {
  const int64_t n_layers = model.n_layers();
  if (n_layers == 0 || model.config().n_ff == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(model.path(), ": no FFN layers to measure the cost model on"));
  }
  std::map<Signature, std::vector<int64_t>> groups;
  for (int64_t l = 0; l < n_layers; ++l) groups[SignatureOf(model.layer(l))].push_back(l);
  FfnCostModel cost;
  cost.curves.resize(static_cast<size_t>(n_layers));
  std::vector<std::string> parts;
  for (const auto& [signature, layers] : groups) {
    // At most kMeasuredLayers of the group's layers are timed (enough to leave the caches cold
    // between passes; the load stays short on deep models).
    const std::vector<int64_t> timed(
        layers.begin(), layers.begin() + std::min<size_t>(layers.size(), kMeasuredLayers));
    const Timed t = Measure(model, timed);
    for (int64_t l : layers) cost.curves[static_cast<size_t>(l)] = t.curve;
    parts.push_back(absl::StrFormat(
        "%s: dense %.3f ms, sparse %.3f ms at %.0f%% and %.3f ms at %.0f%% -> crossover %.2f",
        DTypeName(std::get<0>(signature)), t.curve.dense_seconds * 1e3, t.low_seconds * 1e3,
        kLowDensity * 100, t.high_seconds * 1e3, kHighDensity * 100, t.curve.crossover));
  }
  if (predictor != nullptr) {
    if (predictor->n_layers() != n_layers) {
      return absl::InvalidArgumentError(absl::StrCat("a predictor of ", predictor->n_layers(),
                                                     " layers for a model of ", n_layers));
    }
    // Layers of one rank (and dtype, the same for all) cost the same.
    std::map<int64_t, PredictorCost> by_rank;
    cost.predictor.resize(static_cast<size_t>(n_layers));
    for (int64_t l = 0; l < n_layers; ++l) {
      const int64_t rank = predictor->layers[static_cast<size_t>(l)].rank;
      auto it = by_rank.find(rank);
      if (it == by_rank.end()) it = by_rank.emplace(rank, MeasurePredictor(*predictor, l)).first;
      cost.predictor[static_cast<size_t>(l)] = it->second;
    }
    parts.push_back(absl::StrFormat("predictor %.3f ms", cost.predictor.front().seconds * 1e3));
  }
  cost.source = absl::StrCat("measured at load (", cpu::Threads(), " threads; ",
                             absl::StrJoin(parts, "; "), ")");
  return cost;
}

}  // namespace pinfer
