#include "runtime/exec/ffn_builder.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace pinfer {
namespace {

std::vector<int32_t> AllNeurons(int64_t n_ff) {
  std::vector<int32_t> ids(static_cast<size_t>(n_ff));
  for (int64_t i = 0; i < n_ff; ++i) ids[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  return ids;
}

// A stand-in GPU part whose rows count in the stand-in device's memory while it lives.
class StandInPart : public CpuPartBackend {
 public:
  StandInPart(const Model& model, int64_t layer, std::vector<int32_t> neurons,
              std::shared_ptr<const FiringThresholds> firing, std::shared_ptr<Backend> device)
      : CpuPartBackend(model, layer, neurons, /*separate_partial=*/true, std::move(firing)),
        device_(std::move(device)) {
    const LayerWeights& w = model.layer(layer);
    bytes_ = static_cast<int64_t>(neurons.size() *
                                  (w.ffn_gate.row_bytes + w.ffn_up.row_bytes + w.ffn_down_t.row_bytes));
    device_->Account(MemoryPart::kFfn, bytes_);
  }
  ~StandInPart() override { device_->Account(MemoryPart::kFfn, -bytes_); }

 private:
  std::shared_ptr<Backend> device_;
  int64_t bytes_ = 0;
};

}  // namespace

GpuBackendFactory StandInPartFactory(const Model& model, std::shared_ptr<Backend> device,
                                     std::shared_ptr<const FiringThresholds> firing) {
  return [&model, device = std::move(device), firing = std::move(firing)](
             int64_t layer,
             std::vector<int32_t> neurons) -> absl::StatusOr<std::unique_ptr<PartBackend>> {
    return std::make_unique<StandInPart>(model, layer, std::move(neurons), firing, device);
  };
}

absl::StatusOr<std::vector<std::unique_ptr<LayerFfn>>> BuildFfnLayers(const Model& model,
                                                                      const FfnSetup& setup) {
  const ModelConfig& c = model.config();
  const bool plan = !setup.gpu_neurons.empty();
  if (plan && static_cast<int64_t>(setup.gpu_neurons.size()) != c.n_layers) {
    return absl::InvalidArgumentError(absl::StrCat("a partition of ", setup.gpu_neurons.size(),
                                                   " layers for a model of ", c.n_layers));
  }
  const Selection selection = setup.selector != nullptr ? Selection::kPredicted
                              : setup.exact             ? Selection::kExact
                                                        : Selection::kAll;
  if (setup.exact && (setup.selector != nullptr || setup.auto_select)) {
    return absl::InvalidArgumentError("exact selection and a selector cannot be combined");
  }
  if (!setup.auto_priors.empty() &&
      static_cast<int64_t>(setup.auto_priors.size()) != c.n_layers) {
    return absl::InvalidArgumentError(absl::StrCat("auto densities of ", setup.auto_priors.size(),
                                                   " layers for a model of ", c.n_layers));
  }
  // A device part runs one token at a time over its masks: each token's own set, not the union.
  const auto device_cost =
      std::make_shared<const FfnCostModel>(FfnCostModel::Fixed(1.01, RowChoice::kPerToken));
  std::vector<std::unique_ptr<LayerFfn>> layers;
  layers.reserve(static_cast<size_t>(c.n_layers));
  for (int64_t l = 0; l < c.n_layers; ++l) {
    std::vector<FfnPart> parts;
    std::vector<int32_t> cold = AllNeurons(c.n_ff);
    if (plan && !setup.gpu_neurons[static_cast<size_t>(l)].empty()) {
      const std::vector<int32_t>& hot = setup.gpu_neurons[static_cast<size_t>(l)];
      // Checked before a backend reads the rows they name.
      for (size_t i = 0; i < hot.size(); ++i) {
        if (hot[i] < 0 || hot[i] >= c.n_ff || (i > 0 && hot[i] <= hot[i - 1])) {
          return absl::InvalidArgumentError(absl::StrCat(
              "layer ", l, " GPU neurons are not ascending, unique and inside [0, ", c.n_ff, ")"));
        }
      }
      FfnPart gpu;
      gpu.neurons = hot;
      if (setup.gpu_backend) {
        absl::StatusOr<std::unique_ptr<PartBackend>> backend = setup.gpu_backend(l, hot);
        if (!backend.ok()) return backend.status();
        gpu.backend = *std::move(backend);
      } else {
        gpu.backend = std::make_unique<CpuPartBackend>(model, l, hot, /*separate_partial=*/true,
                                                       setup.firing);
      }
      // A stand-in computes as the CPU does; a device part one token at a time over its masks,
      // and with no gate-first path (an exact run computes all of its neurons).
      const bool stand_in = gpu.backend->device() == "cpu";
      gpu.cost = stand_in ? setup.cost : device_cost;
      gpu.selection = gpu.backend->selects_on_device()               ? Selection::kPredicted
                      : selection == Selection::kExact && !stand_in ? Selection::kAll
                                                                     : selection;
      parts.push_back(std::move(gpu));
      cold = ComplementNeurons(hot, c.n_ff);
    }
    if (!cold.empty()) {
      FfnPart cpu;
      // Dense execution is the original model: thresholds belong to sparse and hybrid runs.
      const bool dense = !plan && selection == Selection::kAll && !setup.auto_select;
      cpu.backend = std::make_unique<CpuPartBackend>(model, l, cold, /*separate_partial=*/false,
                                                     dense ? nullptr : setup.firing);
      cpu.neurons = std::move(cold);
      cpu.selection = setup.auto_select ? Selection::kAuto : selection;
      cpu.cost = setup.cost;
      if (setup.auto_select && !setup.auto_priors.empty()) {
        cpu.seen = setup.auto_priors[static_cast<size_t>(l)];
      }
      parts.push_back(std::move(cpu));
    }
    absl::StatusOr<std::unique_ptr<LayerFfn>> layer =
        BuildLayerFfn(model, l, std::move(parts), setup.selector, setup.firing, setup.check);
    if (!layer.ok()) return layer.status();
    layers.push_back(*std::move(layer));
  }
  return layers;
}

}  // namespace pinfer
