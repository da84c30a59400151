// The production NeuronSelector: each layer's activation predictor (model.predictor.pi) evaluated
// on the FFN input, neuron i selected when its logit reaches the layer's threshold.
#pragma once

#include <memory>

#include "runtime/cpu/predictor_kernel.h"
#include "runtime/exec/sparse_ffn.h"
#include "runtime/model/predictor_weights.h"

namespace pinfer {

class PredictorSelector : public NeuronSelector {
 public:
  explicit PredictorSelector(PredictorWeights weights) : weights_(std::move(weights)) {}
  std::string_view name() const override { return "predictor"; }
  absl::Status Select(int64_t layer, const float* x, int64_t n, FfnWorkspace& workspace,
                      SelectedNeurons& out) override;
  uint64_t SelectBytes(int64_t layer) const override { return weights_.LayerBytes(layer); }

  const PredictorWeights& weights() const { return weights_; }

 private:
  PredictorWeights weights_;
  cpu::PredictorScratch scratch_;
  cpu::PredictedActive active_;
};

}  // namespace pinfer
