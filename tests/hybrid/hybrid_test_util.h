// Helpers of the hybrid FFN tests: models, logits of a fixed token sequence, partitions, and a
// counting oracle selector.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "format/dtype.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/ffn_builder.h"
#include "runtime/exec/layer_ffn.h"
#include "runtime/exec/neuron_selector.h"
#include "runtime/model/model.h"
#include "runtime/model/predictor_weights.h"
#include "tests/runtime/test_models.h"

namespace pinfer::hybrid_test {

std::unique_ptr<Model> LoadModel(test::BundledModel which,
                                 std::optional<DType> dtype = std::nullopt);

// What the FFN of a run did, summed over layers: the asynchronous parts are the GPU side (a CPU
// stand-in without a GPU backend), the others the CPU side.
struct SplitStats {
  int64_t tokens = 0;  // through the first layer
  int64_t gpu_neurons = 0;
  int64_t cpu_neurons = 0;
  int64_t synchronisations = 0;
  double gpu_seconds = 0.0;
  std::string gpu_backend = "none";
  std::vector<FfnStats> layers;  // each layer's parts and selector, summed

  double HotCoverage() const;
};

struct RunResult {
  std::vector<float> logits;
  SplitStats stats;
};

// The logits of a 12-token prompt (one batch: the MatMul paths) and of 4 decoded tokens (one at a
// time: the mat-vec paths), all concatenated, with the FFN `setup` builds (dense: FfnSetup{}).
RunResult RunFfn(const Model& model, const FfnSetup& setup);
inline std::vector<float> RunLogits(const Model& model, const FfnSetup& setup = {}) {
  return RunFfn(model, setup).logits;
}

// A plan's split: `gpu_neurons` in a GPU part standing in on the CPU (or `gpu_backend`'s), the rest
// on the CPU; each token's own active set when there is a selector (no cost model: the selection
// always).
FfnSetup Hybrid(std::vector<std::vector<int32_t>> gpu_neurons,
                std::shared_ptr<NeuronSelector> selector = nullptr,
                std::shared_ptr<const FiringThresholds> firing = nullptr,
                GpuBackendFactory gpu_backend = nullptr);

// Where a run puts the dense parts (Executor::SetPlacement) on a fresh CPU stand-in device.
struct DenseSpec {
  std::vector<uint8_t> attention;  // [n_layers] 1: the layer's attention on the device
  bool classifier = false;
  std::shared_ptr<Backend> device;  // null: a fresh CPU stand-in
  // The FFN's device parts over `device`; null: stand-in parts (StandInPartFactory).
  std::function<GpuBackendFactory(std::shared_ptr<Backend>)> ffn_parts;
};
// "none", "all", "alternating" (odd layers), "first", "last": which layers' attention.
std::vector<uint8_t> AttentionPattern(const Model& model, const std::string& which);

struct PlacedRun {
  std::vector<float> logits;      // as RunFfn's: a 12-token prompt and 4 decoded tokens
  std::vector<int32_t> greedy;    // then 8 greedy tokens
  Executor::TransferCounts transfers;  // of the 4 decoded tokens
  PlanBytes device_bytes;         // the stand-in's memory after the run (KV included)
  int64_t passes = 4;             // of `transfers`
};
// `gpu_neurons` (empty: none) in stand-in GPU parts on the same device, the dense parts as `spec`
// says, an f16 KV cache (the device's type, so that host and device caches round alike).
PlacedRun RunPlaced(const Model& model, const std::vector<std::vector<int32_t>>& gpu_neurons,
                    const DenseSpec& spec);

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
