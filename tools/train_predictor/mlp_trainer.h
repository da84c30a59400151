// Trains one layer's predictor MLP with LibTorch: x -> Linear(dim, rank) -> ReLU ->
// Linear(rank, n_ff) -> sigmoid, binary cross-entropy with a per-neuron positive weight (the rare
// "fired" class weighs more), Adam. The only translation unit of pinfer that includes LibTorch
// headers, so the rest of the tool (and its tests) compile without them.
//
// Reproducibility by construction: the initial weights come from our own seeded generator and the
// minibatch order from LayerSampleStream, so the same seed gives the same weights on one machine
// with the same thread count (LibTorch's CPU kernels split work by thread count; on a GPU,
// cuBLAS may reorder sums, so bit-identical results are only promised on the CPU).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/train_predictor/sample_stream.h"

namespace pinfer {

// f32 weights in the artifact's output-major layout.
struct MlpWeights {
  int64_t dim = 0;
  int64_t rank = 0;
  int64_t n_ff = 0;
  std::vector<float> w1;  // [rank, dim]
  std::vector<float> b1;  // [rank]
  std::vector<float> w2;  // [n_ff, rank]
  std::vector<float> b2;  // [n_ff]
};

struct MlpTrainOptions {
  int64_t rank = 64;
  int64_t epochs = 12;
  int64_t batch_size = 64;
  double learning_rate = 1e-2;
  // A neuron's positive weight is (not fired / fired) on the training samples, clamped to
  // [1, max_pos_weight]: rare neurons count more, so the loss does not settle for "never fires".
  double max_pos_weight = 20;
  uint64_t seed = 0;
  bool use_cuda = false;
  // false: b1 = b2 = 0, not trained (PowerInfer's fc1/fc2 have none), and the inputs are scaled
  // but not centred, since centring folds into b1.
  bool biases = true;
};

// Per epoch, on the validation samples at the model's own boundary p >= 0.5.
struct EpochReport {
  int64_t epoch = 0;  // 1-based
  double train_loss = 0;
  double validation_loss = 0;
  double recall = 0;
  double precision = 0;
  double seconds = 0;
};

// Trains for options.epochs and returns the weights of the epoch with the lowest validation loss.
absl::StatusOr<MlpWeights> TrainMlp(const LayerSampleStream& data, const MlpTrainOptions& options,
                                    const std::function<void(const EpochReport&)>& on_epoch = {});

// LibTorch facts: whether it can use a CUDA device, its version, and its intra-op thread count.
bool TorchCudaAvailable();
std::string TorchVersion();
void SetTorchThreads(int threads);

}  // namespace pinfer
