#include "runtime/exec/layer_ffn.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "format/strings.h"

namespace pinfer {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

LayerFfn::LayerFfn(const Model& model, int64_t layer, std::vector<FfnPart> parts,
                   std::shared_ptr<NeuronSelector> selector,
                   std::shared_ptr<const FiringThresholds> firing, bool check)
    : model_(model),
      layer_(layer),
      parts_(std::move(parts)),
      selector_(std::move(selector)),
      firing_(std::move(firing)),
      check_(check),
      owner_(static_cast<size_t>(model.config().n_ff), 0),
      part_tokens_(parts_.size()),
      part_union_(parts_.size()),
      part_calls_(parts_.size()),
      modes_(parts_.size(), AutoMode::kDense),
      selected_union_(parts_.size(), 0),
      marks_(static_cast<size_t>(model.config().n_ff), 0) {
  // Asynchronous parts begin first, so that their work is enqueued before the CPU starts on its
  // own.
  std::stable_sort(parts_.begin(), parts_.end(), [](const FfnPart& a, const FfnPart& b) {
    return a.backend->asynchronous() && !b.backend->asynchronous();
  });
  for (size_t p = 0; p < parts_.size(); ++p) {
    for (int32_t id : parts_[p].neurons) owner_[static_cast<size_t>(id)] = static_cast<int32_t>(p);
  }
  const LayerWeights& w = model.layer(layer);
  const double n_ff = static_cast<double>(model.config().n_ff);
  gate_bytes_ = n_ff * static_cast<double>(w.ffn_gate.row_bytes);
  up_down_bytes_ = n_ff * static_cast<double>(w.ffn_up.row_bytes + w.ffn_down_t.row_bytes);
  if (selector_ != nullptr) predictor_bytes_ = static_cast<double>(selector_->SelectBytes(layer));
}

namespace {

// The share of n_ff that fires (or is selected) for some token of n, from a per-token density:
// as if the tokens were independent (an upper estimate for correlated ones), and back.
double UnionOf(double per_token, int64_t n) {
  if (per_token < 0.0 || n <= 1) return per_token;
  return 1.0 - std::pow(1.0 - std::clamp(per_token, 0.0, 1.0), static_cast<double>(n));
}
double PerTokenOf(double union_density, int64_t n) {
  if (n <= 1) return union_density;
  return 1.0 - std::pow(1.0 - std::clamp(union_density, 0.0, 1.0), 1.0 / static_cast<double>(n));
}
// A running estimate: the recent calls weigh most, the first one sets it.
double Blend(double old_value, double observed) {
  return old_value < 0.0 ? observed : 0.8 * old_value + 0.2 * observed;
}

}  // namespace

AutoMode LayerFfn::ModeOf(size_t p, int64_t n) const {
  const FfnPart& part = parts_[p];
  switch (part.selection) {
    case Selection::kAll:
      return AutoMode::kDense;
    case Selection::kExact:
      return AutoMode::kExact;
    case Selection::kPredicted:
      return AutoMode::kPredictor;
    case Selection::kAuto:
      break;
  }
  AutoInputs in;
  in.part = static_cast<double>(part.neurons.size()) / static_cast<double>(model_.config().n_ff);
  in.fired = UnionOf(part.seen.fired, n);
  in.predicted = UnionOf(part.seen.predicted, n);
  in.has_predictor = selector_ != nullptr;
  in.gate_bytes = gate_bytes_;
  in.up_down_bytes = up_down_bytes_;
  in.predictor_bytes = predictor_bytes_;
  const FfnCostModel fixed;
  return (part.cost != nullptr ? *part.cost : fixed).ChooseMode(layer_, n, in);
}

void LayerFfn::Learn(size_t p, int64_t n, AutoMode mode, const FfnStats& result) {
  FfnPart& part = parts_[p];
  if (part.selection != Selection::kAuto) return;
  const double n_ff = static_cast<double>(model_.config().n_ff);
  if (mode == AutoMode::kExact) {
    // The backend reports the union that fired as the call's largest selection.
    part.seen.fired = Blend(part.seen.fired, PerTokenOf(result.max_selected / n_ff, n));
  } else if (mode == AutoMode::kPredictor) {
    part.seen.predicted =
        Blend(part.seen.predicted, PerTokenOf(selected_union_[p] / n_ff, n));
  }
}

FfnStats LayerFfn::Totals() const {
  FfnStats total = selector_stats_;
  for (const FfnPart& part : parts_) {
    FfnStats s = part.stats;
    // Tokens pass the layer once, whatever its parts.
    s.tokens = 0;
    total += s;
  }
  total.tokens = parts_.empty() ? 0 : parts_.front().stats.tokens;
  return total;
}

void LayerFfn::ResetStats() {
  selector_stats_ = {};
  for (FfnPart& part : parts_) part.stats = {};
}

void LayerFfn::Union(const SelectedNeurons& sets, std::vector<int32_t>& out) {
  if (++mark_ == 0) {  // wrapped: old marks could collide
    std::fill(marks_.begin(), marks_.end(), 0);
    mark_ = 1;
  }
  out.clear();
  for (int32_t id : sets.ids) {
    if (marks_[static_cast<size_t>(id)] != mark_) {
      marks_[static_cast<size_t>(id)] = mark_;
      out.push_back(id);
    }
  }
  std::sort(out.begin(), out.end());  // ascending rows: the weights stream in order
}

NeuronRows LayerFfn::ChooseRows(size_t p, int64_t n, AutoMode mode) {
  FfnPart& part = parts_[p];
  const int64_t size = static_cast<int64_t>(part.neurons.size());
  part.stats.mode_calls[n > 1 ? 1 : 0][static_cast<int>(mode)] += 1;
  if (mode == AutoMode::kExact) return NeuronRows::GateFirst();
  if (mode == AutoMode::kDense || part.backend->selects_on_device()) {
    if (mode == AutoMode::kDense) part.stats.selected += n * size;
    return NeuronRows::All();
  }
  // The selector's sets restricted to the part (the sets themselves for a one-part layer).
  const SelectedNeurons* tokens = &selected_;
  if (parts_.size() > 1) {
    SelectedNeurons& mine = part_tokens_[p];
    mine.Clear();
    for (int64_t t = 0; t < n; ++t) {
      for (int32_t id : selected_.Token(t)) {
        if (owner_[static_cast<size_t>(id)] == static_cast<int32_t>(p)) mine.ids.push_back(id);
      }
      mine.offsets.push_back(static_cast<int64_t>(mine.ids.size()));
    }
    tokens = &mine;
  }
  const int64_t selected_sum = static_cast<int64_t>(tokens->ids.size());
  std::span<const int32_t> batch = tokens->ids;
  if (n > 1) {
    Union(*tokens, part_union_[p]);
    batch = part_union_[p];
  }
  const int64_t union_size = static_cast<int64_t>(batch.size());
  selected_union_[p] = union_size;
  part.stats.selected += selected_sum;
  part.stats.max_selected = std::max(part.stats.max_selected, union_size);
  const FfnCostModel fixed;
  const FfnCostModel& cost = part.cost != nullptr ? *part.cost : fixed;
  switch (cost.Choose(layer_, model_.config().n_ff, size, n, union_size, selected_sum)) {
    case RowChoice::kAll:
      part.stats.dense_calls += 1;
      return NeuronRows::All();
    case RowChoice::kPerToken:
      return NeuronRows::PerToken(*tokens);
    case RowChoice::kUnion:
      break;
  }
  return NeuronRows::Batch(batch);
}

absl::StatusOr<uint64_t> LayerFfn::Forward(const FfnCall& call) {
  FfnWorkspace& ws = *call.workspace;
  if (call.n > ws.capacity) {
    return absl::InternalError(absl::StrCat(
        "FFN batch of ", call.n, " tokens exceeds the workspace capacity ", ws.capacity));
  }
  uint64_t bytes = 0;
  bool select = false;
  for (size_t p = 0; p < parts_.size(); ++p) {
    modes_[p] = ModeOf(p, call.n);
    select = select || (modes_[p] == AutoMode::kPredictor && !parts_[p].backend->selects_on_device());
  }
  if (select) {
    const auto start = std::chrono::steady_clock::now();
    if (absl::Status s = selector_->Select(layer_, call.input, call.n, ws, selected_); !s.ok()) {
      return s;
    }
    if (selected_.tokens() != call.n) {
      return absl::InternalError(absl::StrCat("the ", Sv(selector_->name()), " selector returned ",
                                              selected_.tokens(), " token sets for ", call.n,
                                              " tokens"));
    }
    selector_stats_.select_seconds += SecondsSince(start);
    selector_stats_.weight_bytes += selector_->SelectBytes(layer_);
    bytes += selector_->SelectBytes(layer_);
  }
  if (check_) Check(call, select);

  // Begin every part (asynchronous ones first), then finish them in the same order: the CPU
  // parts compute while the device ones do, and the layer waits once per device part.
  for (size_t p = 0; p < parts_.size(); ++p) {
    PartCall& pc = part_calls_[p];
    pc.layer = layer_;
    pc.n = call.n;
    // The device parts work where the hidden state is; the host parts always on the host.
    pc.on_device = call.device_input != nullptr && parts_[p].backend->asynchronous();
    pc.input = pc.on_device ? call.device_input : call.input;
    pc.output = pc.on_device ? call.device_output : call.output;
    pc.workspace = call.workspace;
    pc.rows = ChooseRows(p, call.n, modes_[p]);
    if (absl::Status s = parts_[p].backend->Begin(pc); !s.ok()) return s;
  }
  for (size_t p = 0; p < parts_.size(); ++p) {
    FfnPart& part = parts_[p];
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<FfnStats> result = part.backend->Finish(part_calls_[p]);
    if (!result.ok()) return result.status();
    // A device-resident call does not wait here (the executor synchronises once per layer).
    if (part.backend->asynchronous() && !part_calls_[p].on_device) {
      part.stats.wait_seconds += SecondsSince(start);
      part.stats.synchronisations += 1;
    }
    // These parts learn their selection while computing: what they computed is what they chose.
    if (part.backend->selects_on_device() || modes_[p] == AutoMode::kExact) {
      part.stats.selected += result->computed;
    }
    Learn(p, call.n, modes_[p], *result);
    part.stats.calls += 1;
    part.stats.tokens += call.n;
    part.stats.computed += result->computed;
    part.stats.weight_bytes += result->weight_bytes;
    part.stats.seconds += result->seconds;
    bytes += result->weight_bytes;
  }

  if (call.need_activations) {
    // A dense layer's one CPU part left all of [n, n_ff] in the workspace; otherwise the parts'
    // scratch holds only what they computed.
    const bool dense_cpu = parts_.size() == 1 && !parts_[0].backend->asynchronous() &&
                           part_calls_[0].rows.kind == NeuronRows::Kind::kAll &&
                           static_cast<int64_t>(parts_[0].neurons.size()) == model_.config().n_ff;
    if (!dense_cpu)
      ComputeTrueActivations({&model_, layer_, firing_.get()}, call.input, call.n, ws);
  }
  return bytes;
}

bool LayerFfn::has_host_parts() const {
  return std::any_of(parts_.begin(), parts_.end(),
                     [](const FfnPart& part) { return !part.backend->asynchronous(); });
}

bool LayerFfn::NeedsHostInput(bool need_activations) const {
  if (need_activations || check_ || has_host_parts()) return true;
  // A part that does not select on its device may run the host selector.
  return selector_ != nullptr &&
         std::any_of(parts_.begin(), parts_.end(), [](const FfnPart& part) {
           return part.selection != Selection::kAll && !part.backend->selects_on_device();
         });
}

void LayerFfn::Check(const FfnCall& call, bool selected_on_host) {
  const int64_t n_ff = model_.config().n_ff;
  FfnWorkspace& ws = *call.workspace;
  ComputeTrueActivations({&model_, layer_, firing_.get()}, call.input, call.n, ws);
  const FiringThresholds exact{model_.config().ffn_act, {}};
  const FiringThresholds& rule = firing_ != nullptr ? *firing_ : exact;
  for (int64_t t = 0; t < call.n; ++t) {
    const float* g = ws.gate.data() + t * n_ff;
    const float* a = ws.activations.data() + t * n_ff;
    // The token's selected neurons, marked.
    if (++mark_ == 0) {
      std::fill(marks_.begin(), marks_.end(), 0);
      mark_ = 1;
    }
    if (selected_on_host) {
      for (int32_t id : selected_.Token(t)) marks_[static_cast<size_t>(id)] = mark_;
    }
    for (int64_t i = 0; i < n_ff; ++i) {
      if (!rule.Fires(layer_, g[i], a[i])) continue;
      const size_t p = static_cast<size_t>(owner_[static_cast<size_t>(i)]);
      FfnPart& part = parts_[p];
      // A part selecting on its device is not seen from here: not checked.
      if (part.backend->selects_on_device()) continue;
      // An exact (or dense) call computes every neuron that fires.
      const bool selected =
          modes_[p] != AutoMode::kPredictor || marks_[static_cast<size_t>(i)] == mark_;
      const double mass = std::fabs(a[i]);
      part.stats.true_active += 1;
      part.stats.true_mass += mass;
      if (selected) {
        part.stats.hits += 1;
      } else {
        part.stats.missed_mass += mass;
      }
    }
  }
}

absl::StatusOr<std::unique_ptr<LayerFfn>> BuildLayerFfn(
    const Model& model, int64_t layer, std::vector<FfnPart> parts,
    std::shared_ptr<NeuronSelector> selector, std::shared_ptr<const FiringThresholds> firing,
    bool check) {
  const int64_t n_ff = model.config().n_ff;
  std::vector<uint8_t> seen(static_cast<size_t>(n_ff), 0);
  int64_t covered = 0;
  for (const FfnPart& part : parts) {
    if (part.backend == nullptr || part.neurons.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer ", layer, ": an FFN part without a backend or neurons"));
    }
    for (size_t i = 0; i < part.neurons.size(); ++i) {
      const int32_t id = part.neurons[i];
      if (id < 0 || id >= n_ff || (i > 0 && id <= part.neurons[i - 1]) ||
          seen[static_cast<size_t>(id)]) {
        return absl::InvalidArgumentError(
            absl::StrCat("layer ", layer,
                         " FFN part neurons are not ascending, unique and inside [0, ", n_ff, ")"));
      }
      seen[static_cast<size_t>(id)] = 1;
    }
    covered += static_cast<int64_t>(part.neurons.size());
    if (part.selection == Selection::kPredicted && !part.backend->selects_on_device() &&
        selector == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "layer ", layer, ": a part selects predicted neurons but there is no selector"));
    }
  }
  if (covered != n_ff) {
    return absl::InvalidArgumentError(absl::StrCat("layer ", layer, ": the FFN parts cover ",
                                                   covered, " of its ", n_ff, " neurons"));
  }
  return std::make_unique<LayerFfn>(model, layer, std::move(parts), std::move(selector),
                                    std::move(firing), check);
}

std::vector<int32_t> ComplementNeurons(std::span<const int32_t> part, int64_t n_ff) {
  std::vector<int32_t> rest;
  rest.reserve(static_cast<size_t>(n_ff) - std::min(part.size(), static_cast<size_t>(n_ff)));
  size_t k = 0;
  for (int32_t i = 0; i < n_ff; ++i) {
    while (k < part.size() && part[k] < i) ++k;
    if (k < part.size() && part[k] == i) continue;
    rest.push_back(i);
  }
  return rest;
}

}  // namespace pinfer
