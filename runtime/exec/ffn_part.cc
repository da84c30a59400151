#include "runtime/exec/ffn_part.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "runtime/cpu/kernels.h"

namespace pinfer {

void ActiveRowsOfPart(std::span<const int32_t> active, const std::vector<uint8_t>& member,
                      std::vector<int32_t>& rows) {
  rows.clear();
  for (int32_t id : active) {
    if (id >= 0 && static_cast<size_t>(id) < member.size() && member[static_cast<size_t>(id)]) {
      rows.push_back(id);
    }
  }
}

CpuFfnPart::CpuFfnPart(const Model& model, int64_t layer, std::vector<int32_t> neurons,
                       bool separate_partial, std::shared_ptr<const FiringThresholds> firing)
    : model_(model),
      layer_(layer),
      neurons_(std::move(neurons)),
      member_(static_cast<size_t>(model.config().n_ff), 0),
      separate_partial_(separate_partial),
      firing_(std::move(firing)) {
  for (int32_t id : neurons_) member_[static_cast<size_t>(id)] = 1;
}

void CpuFfnPart::Compute(const int32_t* rows, int64_t count, const float* x, int64_t n, float* y,
                         FfnWorkspace& ws) {
  if (count == 0) return;
  const ModelConfig& config = model_.config();
  const LayerWeights& w = model_.layer(layer_);
  cpu::GatherMatMul(w.ffn_gate, rows, count, x, n, ws.gate.data());
  cpu::GatherMatMul(w.ffn_up, rows, count, x, n, ws.up.data());
  cpu::FfnCombine(ToKernelActivation(config.ffn_act.kind), config.ffn_act.param, ws.gate.data(),
                  ws.up.data(), n * count, ws.activations.data());
  if (firing_ != nullptr) firing_->Apply(layer_, ws.gate.data(), n * count, ws.activations.data());
  cpu::GatherMatMulTransposedAccumulate(w.ffn_down_t, rows, count, ws.activations.data(), n, y);
}

absl::Status CpuFfnPart::Begin(const FfnPartCall& call) {
  const auto start = std::chrono::steady_clock::now();
  FfnWorkspace& ws = *call.workspace;
  if (call.n > ws.capacity) {
    return absl::InternalError(absl::StrCat(
        "FFN batch of ", call.n, " tokens exceeds the workspace capacity ", ws.capacity));
  }
  if (call.active != nullptr && call.active->tokens() != call.n) {
    return absl::InternalError(absl::StrCat("active sets for ", call.active->tokens(),
                                            " tokens given for a batch of ", call.n));
  }
  const int64_t dim = model_.config().dim;
  float* y = call.output;
  if (separate_partial_) {
    partial_.assign(static_cast<size_t>(call.n * dim), 0.0f);
    y = partial_.data();
  }
  const LayerWeights& w = model_.layer(layer_);
  const uint64_t row_bytes = w.ffn_gate.row_bytes + w.ffn_up.row_bytes + w.ffn_down_t.row_bytes;
  pending_ = {};
  if (call.active == nullptr) {
    // Every neuron of the part: one gathered product over the whole batch.
    const int64_t count = static_cast<int64_t>(neurons_.size());
    Compute(neurons_.data(), count, call.input, call.n, y, ws);
    pending_.computed_neurons = count * call.n;
    pending_.weight_bytes = static_cast<uint64_t>(count) * row_bytes;
  } else {
    // Each token has its own active rows.
    for (int64_t t = 0; t < call.n; ++t) {
      ActiveRowsOfPart(call.active->Token(t), member_, rows_);
      const int64_t count = static_cast<int64_t>(rows_.size());
      Compute(rows_.data(), count, call.input + t * dim, 1, y + t * dim, ws);
      pending_.computed_neurons += count;
      pending_.weight_bytes += static_cast<uint64_t>(count) * row_bytes;
    }
  }
  pending_.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return absl::OkStatus();
}

absl::StatusOr<FfnPartStats> CpuFfnPart::Finish(const FfnPartCall& call) {
  if (separate_partial_) {
    const auto start = std::chrono::steady_clock::now();
    cpu::Add(partial_.data(), call.n * model_.config().dim, call.output);
    pending_.seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return pending_;
}

}  // namespace pinfer
