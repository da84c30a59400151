// Which neurons of a layer's FFN a batch computes: the active-set type, the selector interface
// that fills it, and the two selectors (the activation predictor in production, the true
// activations in tests and --check). Shared by the sparse CPU FFN (sparse_ffn.h) and the hybrid
// GPU/CPU FFN (hybrid_ffn.h, ffn_part.h).
//
// Calibrated models (silu/gelu without exact zeros): a neuron fires when |act(gate_i·x)| exceeds
// the layer's threshold τ (pi-profile's calibration, CATS-style); FiringThresholds holds the rule
// and applies it to computed activations.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "runtime/cpu/predictor_kernel.h"
#include "runtime/exec/ffn.h"
#include "runtime/model/activation.h"
#include "runtime/model/model.h"
#include "runtime/model/predictor_weights.h"

namespace pinfer {

// The selected (active) neurons of each token of a batch: token t's are
// ids[offsets[t], offsets[t + 1]), ascending (the layout of cpu::PredictedActive).
struct SelectedNeurons {
  std::vector<int32_t> ids;
  std::vector<int64_t> offsets;  // n + 1 entries

  int64_t tokens() const { return offsets.empty() ? 0 : static_cast<int64_t>(offsets.size()) - 1; }
  std::span<const int32_t> Token(int64_t t) const {
    const auto begin = static_cast<size_t>(offsets[static_cast<size_t>(t)]);
    const auto end = static_cast<size_t>(offsets[static_cast<size_t>(t) + 1]);
    return std::span<const int32_t>(ids).subspan(begin, end - begin);
  }
  void Clear() {
    ids.clear();
    offsets.assign(1, 0);
  }
  // Appends one token's ascending ids.
  void AddToken(std::span<const int32_t> token_ids) {
    if (offsets.empty()) offsets.push_back(0);
    ids.insert(ids.end(), token_ids.begin(), token_ids.end());
    offsets.push_back(static_cast<int64_t>(ids.size()));
  }
};

// When a computed neuron counts as firing, and how calibrated models zero the others.
struct FiringThresholds {
  Activation activation;
  // Empty: the activation has exact zeros (a_i != 0 fires). Else τ per layer, on |act(g_i)|.
  std::vector<float> per_layer;

  bool calibrated() const { return !per_layer.empty(); }
  bool Fires(int64_t layer, float gate, float activation_value) const;
  // Zeroes a[j] (computed from gate products g[j]) of the neurons that do not fire: the
  // calibrated model's rule; nothing for exact-zero activations.
  void Apply(int64_t layer, const float* gate, int64_t count, float* a) const;
};

// Fills gate/up/activations [n, n_ff] of the workspace with the dense FFN's values (thresholds
// applied) without touching the output: what the oracle and --check compare against.
void ComputeTrueActivations(const Model& model, const FiringThresholds& firing, int64_t layer,
                            const float* x, int64_t n, FfnWorkspace& workspace);

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
