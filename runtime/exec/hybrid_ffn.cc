#include "runtime/exec/hybrid_ffn.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"

namespace pinfer {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

double HybridFfnStats::HotCoverage() const {
  const int64_t total = gpu_neurons + cpu_neurons;
  return total > 0 ? static_cast<double>(gpu_neurons) / static_cast<double>(total) : 0.0;
}

HybridFfn::HybridFfn(const Model& model, std::vector<HybridLayerParts> layers,
                     std::shared_ptr<NeuronSelector> selector)
    : model_(model), layers_(std::move(layers)), selector_(std::move(selector)) {}

std::string_view HybridFfn::gpu_backend() const {
  for (const HybridLayerParts& parts : layers_) {
    if (parts.gpu != nullptr) return parts.gpu->backend();
  }
  return "none";
}

absl::StatusOr<FfnCallStats> HybridFfn::Forward(const FfnCall& call) {
  if (call.need_activations) {
    return absl::FailedPreconditionError(
        "the hybrid FFN does not expose the activation vector (observe a run with the dense FFN)");
  }
  if (call.layer < 0 || call.layer >= static_cast<int64_t>(layers_.size())) {
    return absl::InternalError(absl::StrCat("hybrid FFN has no layer ", call.layer));
  }
  HybridLayerParts& parts = layers_[static_cast<size_t>(call.layer)];
  if (call.layer == 0) stats_.tokens += call.n;

  FfnPartCall part_call;
  part_call.layer = call.layer;
  part_call.n = call.n;
  part_call.input = call.input;
  part_call.output = call.output;
  part_call.workspace = call.workspace;
  if (selector_ != nullptr) {
    const auto start = std::chrono::steady_clock::now();
    if (absl::Status s =
            selector_->Select(call.layer, call.input, call.n, *call.workspace, active_);
        !s.ok()) {
      return s;
    }
    stats_.select_seconds += SecondsSince(start);
    if (active_.tokens() != call.n) {
      return absl::InternalError(absl::StrCat("the neuron selector returned ", active_.tokens(),
                                              " active sets for ", call.n, " tokens"));
    }
    part_call.active = &active_;
  }

  // The GPU part first, so that its work is enqueued before the CPU starts on its own.
  if (parts.gpu != nullptr) {
    if (absl::Status s = parts.gpu->Begin(part_call); !s.ok()) return s;
  }
  FfnCallStats result;
  if (parts.cpu != nullptr) {
    if (absl::Status s = parts.cpu->Begin(part_call); !s.ok()) return s;
    absl::StatusOr<FfnPartStats> cpu = parts.cpu->Finish(part_call);
    if (!cpu.ok()) return cpu.status();
    stats_.cpu_neurons += cpu->computed_neurons;
    stats_.cpu_seconds += cpu->seconds;
    result.weight_bytes += cpu->weight_bytes;
  }
  if (parts.gpu != nullptr) {
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<FfnPartStats> gpu = parts.gpu->Finish(part_call);
    if (!gpu.ok()) return gpu.status();
    stats_.wait_seconds += SecondsSince(start);
    stats_.synchronisations += 1;
    stats_.gpu_neurons += gpu->computed_neurons;
    stats_.gpu_seconds += gpu->seconds;
    result.weight_bytes += gpu->weight_bytes;
  }
  return result;
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

absl::Status CheckPlanMatchesModel(const PlacementPlan& plan, const Model& model,
                                   const std::string& plan_path) {
  const ModelConfig& c = model.config();
  const std::string digest = model.file().ContentDigestHex();
  if (plan.model_digest != digest) {
    return absl::FailedPreconditionError(
        absl::StrCat(plan_path, ": was made for another model (model digest ", plan.model_digest,
                     ", ", model.path(), " is ", digest, ")"));
  }
  if (plan.n_layers != c.n_layers || plan.n_ff != c.n_ff) {
    return absl::FailedPreconditionError(
        absl::StrCat(plan_path, ": the plan is for ", plan.n_layers, " layers x ", plan.n_ff,
                     " neurons, ", model.path(), " has ", c.n_layers, " x ", c.n_ff));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<HybridFfn>> BuildHybridFfn(
    const Model& model, const std::vector<std::vector<int32_t>>& gpu_neurons,
    const GpuPartFactory& gpu_factory, std::shared_ptr<NeuronSelector> selector,
    std::shared_ptr<const FiringThresholds> firing) {
  const ModelConfig& c = model.config();
  if (static_cast<int64_t>(gpu_neurons.size()) != c.n_layers) {
    return absl::InvalidArgumentError(
        absl::StrCat("a partition of ", gpu_neurons.size(), " layers for a model of ", c.n_layers));
  }
  std::vector<HybridLayerParts> layers(static_cast<size_t>(c.n_layers));
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::vector<int32_t>& hot = gpu_neurons[static_cast<size_t>(l)];
    for (size_t i = 0; i < hot.size(); ++i) {
      if (hot[i] < 0 || hot[i] >= c.n_ff || (i > 0 && hot[i] <= hot[i - 1])) {
        return absl::InvalidArgumentError(absl::StrCat(
            "layer ", l, " GPU neurons are not ascending, unique and inside [0, ", c.n_ff, ")"));
      }
    }
    HybridLayerParts& parts = layers[static_cast<size_t>(l)];
    if (!hot.empty()) {
      if (gpu_factory) {
        absl::StatusOr<std::unique_ptr<FfnPart>> part = gpu_factory(l, hot);
        if (!part.ok()) return part.status();
        parts.gpu = *std::move(part);
      } else {
        parts.gpu = std::make_unique<CpuFfnPart>(model, l, hot, /*separate_partial=*/true, firing);
      }
    }
    std::vector<int32_t> cold = ComplementNeurons(hot, c.n_ff);
    if (!cold.empty()) {
      parts.cpu = std::make_unique<CpuFfnPart>(model, l, std::move(cold),
                                               /*separate_partial=*/false, firing);
    }
  }
  return std::make_shared<HybridFfn>(model, std::move(layers), std::move(selector));
}

}  // namespace pinfer
