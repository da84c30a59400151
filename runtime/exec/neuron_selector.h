// Which neurons of a layer's FFN a batch computes: the selector interface that fills the active
// sets (SelectedNeurons, ffn_rows.h), and its two implementations: the activation predictor in
// production, the true activations in tests. A layer's parts (layer_ffn.h) share one selector.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "runtime/cpu/predictor_kernel.h"
#include "runtime/exec/ffn_rows.h"
#include "runtime/model/firing_thresholds.h"
#include "runtime/model/model.h"
#include "runtime/model/predictor_weights.h"

namespace pinfer {

// Decides, per layer and token, which neurons to compute. One call at a time.
class NeuronSelector {
 public:
  virtual ~NeuronSelector() = default;
  virtual std::string_view name() const = 0;
  // Selects the neurons of `layer` for the n tokens x [n, dim] (the FFN inputs) into `out`
  // (replacing its content). `workspace` may be used as scratch (its gate/up/activations buffers).
  virtual absl::Status Select(int64_t layer, const float* x, int64_t n, FfnWorkspace& workspace,
                              SelectedNeurons& out) = 0;
  // Bytes of weights one Select call reads (the predictor's), for the accounting.
  virtual uint64_t SelectBytes(int64_t layer) const = 0;
};

// The activation predictor (model.predictor.pi) on the CPU: neuron i of a token is selected when
// its logit reaches the layer's threshold (runtime/cpu/predictor_kernel.h). The weights are shared
// (the hybrid FFN's GPU parts upload the same predictor).
class PredictorSelector : public NeuronSelector {
 public:
  explicit PredictorSelector(std::shared_ptr<const PredictorWeights> weights)
      : weights_(std::move(weights)) {}
  std::string_view name() const override { return "predictor"; }
  absl::Status Select(int64_t layer, const float* x, int64_t n, FfnWorkspace& workspace,
                      SelectedNeurons& out) override;
  uint64_t SelectBytes(int64_t layer) const override { return weights_->LayerBytes(layer); }

  const PredictorWeights& weights() const { return *weights_; }

 private:
  std::shared_ptr<const PredictorWeights> weights_;
  cpu::PredictorScratch scratch_;
  cpu::PredictedActive active_;
};

// The true activations: computes the layer densely and selects the neurons that fire. Exact by
// construction; for tests (oracle sparse == dense) and --check. Costs a dense FFN.
class OracleSelector : public NeuronSelector {
 public:
  OracleSelector(const Model& model, FiringThresholds firing)
      : model_(model), firing_(std::move(firing)) {}
  std::string_view name() const override { return "oracle"; }
  absl::Status Select(int64_t layer, const float* x, int64_t n, FfnWorkspace& workspace,
                      SelectedNeurons& out) override;
  uint64_t SelectBytes(int64_t layer) const override { return model_.layer(layer).FfnBytes(); }

 private:
  const Model& model_;
  FiringThresholds firing_;
};

}  // namespace pinfer
