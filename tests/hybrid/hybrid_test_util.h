// Helpers of the hybrid FFN tests: models, logits of a fixed token sequence, partitions, and a
// counting oracle selector.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "format/dtype.h"
#include "runtime/exec/ffn.h"
#include "runtime/exec/ffn_part.h"
#include "runtime/exec/neuron_selector.h"
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

// Counts the neurons its inner selector selects (what the parts must compute in all).
class CountingSelector : public NeuronSelector {
 public:
  explicit CountingSelector(std::shared_ptr<NeuronSelector> inner) : inner_(std::move(inner)) {}
  std::string_view name() const override { return inner_->name(); }
  absl::Status Select(int64_t layer, const float* x, int64_t n, FfnWorkspace& workspace,
                      SelectedNeurons& out) override {
    absl::Status s = inner_->Select(layer, x, n, workspace, out);
    selected += static_cast<int64_t>(out.ids.size());
    return s;
  }
  uint64_t SelectBytes(int64_t layer) const override { return inner_->SelectBytes(layer); }
  int64_t selected = 0;

 private:
  std::shared_ptr<NeuronSelector> inner_;
};

// The oracle of an exact-zero model (the neurons whose activation is non-zero, from a dense
// evaluation: what a perfect predictor of a ReLU model selects), counting its selections.
std::shared_ptr<CountingSelector> CountingOracle(const Model& model);

}  // namespace pinfer::hybrid_test
