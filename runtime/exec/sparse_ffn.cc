#include "runtime/exec/sparse_ffn.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "format/strings.h"
#include "runtime/cpu/kernels.h"

namespace pinfer {

double SparseLayerStats::SelectedDensity(int64_t n_ff) const {
  return tokens > 0 ? static_cast<double>(selected) / (static_cast<double>(tokens) * n_ff) : 0.0;
}
double SparseLayerStats::TrueDensity(int64_t n_ff) const {
  return tokens > 0 ? static_cast<double>(true_active) / (static_cast<double>(tokens) * n_ff) : 0.0;
}
double SparseLayerStats::Recall() const {
  return true_active > 0 ? static_cast<double>(hits) / static_cast<double>(true_active) : 1.0;
}
double SparseLayerStats::FalseNegativeMass() const {
  return true_mass > 0.0 ? missed_mass / true_mass : 0.0;
}

SparseFfn::SparseFfn(const Model& model, std::shared_ptr<NeuronSelector> selector,
                     SparseFfnOptions options)
    : model_(model),
      selector_(std::move(selector)),
      options_(std::move(options)),
      stats_(static_cast<size_t>(model.n_layers())),
      marks_(static_cast<size_t>(model.config().n_ff), 0) {}

void SparseFfn::ResetStats() { std::fill(stats_.begin(), stats_.end(), SparseLayerStats{}); }

absl::StatusOr<FfnCallStats> SparseFfn::Forward(const FfnCall& call) {
  FfnWorkspace& ws = *call.workspace;
  if (call.n > ws.capacity) {
    return absl::InternalError(absl::StrCat(
        "FFN batch of ", call.n, " tokens exceeds the workspace capacity ", ws.capacity));
  }
  const int64_t n_ff = model_.config().n_ff;
  SparseLayerStats& stats = stats_[static_cast<size_t>(call.layer)];
  if (absl::Status s = selector_->Select(call.layer, call.input, call.n, ws, selected_); !s.ok()) {
    return s;
  }
  if (selected_.tokens() != call.n) {
    return absl::InternalError(absl::StrCat("the ", Sv(selector_->name()), " selector returned ",
                                            selected_.tokens(), " token sets for ", call.n,
                                            " tokens"));
  }
  if (options_.check) Check(call, selected_);
  stats.calls += 1;
  stats.tokens += call.n;
  stats.selected += static_cast<int64_t>(selected_.ids.size());

  const std::span<const int32_t> neurons =
      call.n == 1 ? std::span<const int32_t>(selected_.ids) : BatchUnion(selected_);
  const double density = static_cast<double>(neurons.size()) / static_cast<double>(n_ff);
  stats.max_selected = std::max(stats.max_selected, static_cast<int64_t>(neurons.size()));
  uint64_t bytes = selector_->SelectBytes(call.layer);
  // An observer needs every neuron's gate product and activation: only the dense path has them.
  if (call.need_activations || !options_.cost.UseSparse(call.layer, density)) {
    stats.dense_calls += 1;
    stats.computed += n_ff;
    bytes += ForwardDense(call);
  } else {
    stats.computed += static_cast<int64_t>(neurons.size());
    bytes += ForwardSelected(call, neurons);
  }
  stats.weight_bytes += bytes;
  return FfnCallStats{bytes};
}

uint64_t SparseFfn::ForwardDense(const FfnCall& call) {
  FfnWorkspace& ws = *call.workspace;
  const LayerWeights& w = model_.layer(call.layer);
  ComputeTrueActivations(model_, options_.firing, call.layer, call.input, call.n, ws);
  cpu::MatMulTransposedAccumulate(w.ffn_down_t, ws.activations.data(), call.n, call.output);
  return w.FfnBytes();
}

uint64_t SparseFfn::ForwardSelected(const FfnCall& call, std::span<const int32_t> neurons) {
  if (neurons.empty()) return 0;
  const ModelConfig& c = model_.config();
  const LayerWeights& w = model_.layer(call.layer);
  FfnWorkspace& ws = *call.workspace;
  const int64_t k = static_cast<int64_t>(neurons.size());
  // [n, k] products in the workspace's [capacity, n_ff] buffers.
  cpu::GatherMatMul(w.ffn_gate, neurons.data(), k, call.input, call.n, ws.gate.data());
  cpu::GatherMatMul(w.ffn_up, neurons.data(), k, call.input, call.n, ws.up.data());
  cpu::FfnCombine(ToKernelActivation(c.ffn_act.kind), c.ffn_act.param, ws.gate.data(), ws.up.data(),
                  call.n * k, ws.activations.data());
  options_.firing.Apply(call.layer, ws.gate.data(), call.n * k, ws.activations.data());
  cpu::GatherMatMulTransposedAccumulate(w.ffn_down_t, neurons.data(), k, ws.activations.data(),
                                        call.n, call.output);
  return static_cast<uint64_t>(k) *
         (w.ffn_gate.row_bytes + w.ffn_up.row_bytes + w.ffn_down_t.row_bytes);
}

std::span<const int32_t> SparseFfn::BatchUnion(const SelectedNeurons& selected) {
  if (++mark_ == 0) {  // wrapped: old marks could collide
    std::fill(marks_.begin(), marks_.end(), 0);
    mark_ = 1;
  }
  union_.clear();
  for (int32_t id : selected.ids) {
    if (marks_[static_cast<size_t>(id)] != mark_) {
      marks_[static_cast<size_t>(id)] = mark_;
      union_.push_back(id);
    }
  }
  std::sort(union_.begin(), union_.end());  // ascending rows: the weights stream in order
  return union_;
}

void SparseFfn::Check(const FfnCall& call, const SelectedNeurons& selected) {
  const int64_t n_ff = model_.config().n_ff;
  FfnWorkspace& ws = *call.workspace;
  ComputeTrueActivations(model_, options_.firing, call.layer, call.input, call.n, ws);
  SparseLayerStats& stats = stats_[static_cast<size_t>(call.layer)];
  for (int64_t t = 0; t < call.n; ++t) {
    const float* g = ws.gate.data() + t * n_ff;
    const float* a = ws.activations.data() + t * n_ff;
    const std::span<const int32_t> ids = selected.Token(t);
    size_t next = 0;  // ids are ascending: walk them alongside the neurons
    for (int64_t i = 0; i < n_ff; ++i) {
      const bool is_selected = next < ids.size() && ids[next] == i;
      if (is_selected) ++next;
      if (!options_.firing.Fires(call.layer, g[i], a[i])) continue;
      const double mass = std::fabs(a[i]);
      stats.true_active += 1;
      stats.true_mass += mass;
      if (is_selected) {
        stats.hits += 1;
      } else {
        stats.missed_mass += mass;
      }
    }
  }
}

std::string FormatSparseReport(const SparseFfn& ffn, int64_t n_ff, bool with_check) {
  std::string out;
  SparseLayerStats total;
  const std::vector<SparseLayerStats>& stats = ffn.stats();
  for (size_t l = 0; l < stats.size(); ++l) {
    const SparseLayerStats& s = stats[l];
    absl::StrAppendFormat(&out, "layer %2d: selected density %.3f, dense calls %lld/%lld",
                          static_cast<int>(l), s.SelectedDensity(n_ff),
                          static_cast<long long>(s.dense_calls), static_cast<long long>(s.calls));
    if (with_check) {
      absl::StrAppendFormat(&out, ", actual density %.3f, recall %.4f, false-negative mass %.4f",
                            s.TrueDensity(n_ff), s.Recall(), s.FalseNegativeMass());
    }
    out += "\n";
    total.calls += s.calls;
    total.dense_calls += s.dense_calls;
    total.tokens += s.tokens;
    total.selected += s.selected;
    total.true_active += s.true_active;
    total.hits += s.hits;
    total.true_mass += s.true_mass;
    total.missed_mass += s.missed_mass;
  }
  absl::StrAppendFormat(&out, "all layers: selected density %.3f, dense calls %lld/%lld",
                        total.SelectedDensity(n_ff), static_cast<long long>(total.dense_calls),
                        static_cast<long long>(total.calls));
  if (with_check) {
    absl::StrAppendFormat(&out, ", actual density %.3f, recall %.4f, false-negative mass %.4f",
                          total.TrueDensity(n_ff), total.Recall(), total.FalseNegativeMass());
  }
  out += "\n";
  return out;
}

}  // namespace pinfer
