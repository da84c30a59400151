// Helpers of the hybrid FFN tests: models, logits of a fixed token sequence, partitions, and an
// oracle selector.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "format/dtype.h"
#include "runtime/cpu/kernels.h"
#include "runtime/exec/ffn.h"
#include "runtime/exec/ffn_part.h"
#include "runtime/model/model.h"
#include "runtime/model/predictor_weights.h"
#include "tests/runtime/test_models.h"

namespace pinfer::hybrid_test {

std::unique_ptr<Model> LoadModel(test::BundledModel which,
                                 std::optional<DType> dtype = std::nullopt);

// The logits of a 12-token prompt (one batch: the MatMul paths) and of 4 decoded tokens (one at a
// time: the mat-vec paths), all concatenated; `ffn` null: the dense FFN.
std::vector<float> RunLogits(const Model& model, std::shared_ptr<FfnStrategy> ffn);

double MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b);
double MaxAbs(const std::vector<float>& a);
// max |expected - actual| <= relative · max(1, max |expected|). The default is tight: splitting an
// FFN in parts on the CPU only changes the order of the down projection's float additions.
void ExpectSameLogits(const std::vector<float>& expected, const std::vector<float>& actual,
                      const std::string& what, double relative = 2e-5);

std::vector<std::vector<int32_t>> EveryLayer(const Model& model,
                                             const std::vector<int32_t>& neurons);
std::vector<int32_t> AllNeurons(int64_t n_ff);
// Each neuron on the GPU side with probability p, independently per layer.
std::vector<std::vector<int32_t>> RandomPartition(const Model& model, double p, uint32_t seed);

// A predictor for `model` with random f16 weights of rank 16 selecting about half the neurons: a
// real predictor's shape and code path, not its accuracy.
std::shared_ptr<const PredictorWeights> RandomPredictor(const Model& model, uint32_t seed);

// The neurons whose activation is exactly non-zero, from a dense evaluation: what a perfect
// predictor of a ReLU model selects.
class OracleSelector : public ActiveNeuronSelector {
 public:
  explicit OracleSelector(const Model& model) : model_(model) {}
  absl::Status Select(int64_t layer, const float* x, int64_t n, ActiveNeurons& active) override {
    const ModelConfig& c = model_.config();
    const LayerWeights& w = model_.layer(layer);
    gate_.resize(static_cast<size_t>(n * c.n_ff));
    up_.resize(gate_.size());
    a_.resize(gate_.size());
    cpu::MatMul(w.ffn_gate, x, n, gate_.data());
    cpu::MatMul(w.ffn_up, x, n, up_.data());
    cpu::FfnCombine(ToKernelActivation(c.ffn_act.kind), c.ffn_act.param, gate_.data(), up_.data(),
                    n * c.n_ff, a_.data());
    active.Clear();
    std::vector<int32_t> ids;
    for (int64_t t = 0; t < n; ++t) {
      ids.clear();
      for (int32_t i = 0; i < c.n_ff; ++i) {
        if (a_[static_cast<size_t>(t * c.n_ff + i)] != 0.0f) ids.push_back(i);
      }
      active.AddToken(ids);
      selected += static_cast<int64_t>(ids.size());
    }
    return absl::OkStatus();
  }
  int64_t selected = 0;

 private:
  const Model& model_;
  std::vector<float> gate_, up_, a_;
};

}  // namespace pinfer::hybrid_test
