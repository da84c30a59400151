#include "runtime/exec/ffn_part.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "runtime/cpu/kernels.h"

namespace pinfer {

CpuPartBackend::CpuPartBackend(const Model& model, int64_t layer, std::vector<int32_t> neurons,
                               bool separate_partial,
                               std::shared_ptr<const FiringThresholds> firing)
    : model_(model),
      layer_(layer),
      neurons_(std::move(neurons)),
      whole_layer_(static_cast<int64_t>(neurons_.size()) == model.config().n_ff),
      separate_partial_(separate_partial),
      firing_(std::move(firing)) {}

absl::Status CpuPartBackend::Begin(const PartCall& call) {
  const auto start = std::chrono::steady_clock::now();
  FfnWorkspace& ws = *call.workspace;
  if (call.n > ws.capacity) {
    return absl::InternalError(absl::StrCat(
        "FFN batch of ", call.n, " tokens exceeds the workspace capacity ", ws.capacity));
  }
  const int64_t dim = model_.config().dim;
  float* y = call.output;
  if (separate_partial_) {
    partial_.assign(static_cast<size_t>(call.n * dim), 0.0f);
    y = partial_.data();
  }
  // kAll and an empty kGateFirst are the part's neurons: the dense kernels when the part is the
  // whole layer.
  NeuronRows rows = call.rows;
  if (!whole_layer_ && rows.kind == NeuronRows::Kind::kAll) rows = NeuronRows::Batch(neurons_);
  if (!whole_layer_ && rows.kind == NeuronRows::Kind::kGateFirst && rows.batch.empty()) {
    rows = NeuronRows::GateFirst(neurons_);
  }
  pending_ = {};
  int64_t fired = 0;
  pending_.weight_bytes =
      ComputeFfnRows({&model_, layer_, firing_.get()}, call.input, call.n, rows, ws, y, &fired);
  // Gate-first: the neurons it went on to compute are the ones that fired.
  pending_.computed = rows.kind == NeuronRows::Kind::kGateFirst
                          ? fired
                          : rows.Computed(call.n, model_.config().n_ff);
  // Gate-first: the union that fired, which auto learns the firing density from.
  if (rows.kind == NeuronRows::Kind::kGateFirst) {
    pending_.max_selected = static_cast<int64_t>(ws.fired.size());
  }
  pending_.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return absl::OkStatus();
}

absl::StatusOr<FfnStats> CpuPartBackend::Finish(const PartCall& call) {
  if (separate_partial_) {
    const auto start = std::chrono::steady_clock::now();
    cpu::Add(partial_.data(), call.n * model_.config().dim, call.output);
    pending_.seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return pending_;
}

}  // namespace pinfer
