// What pi-train-predictor does once its flags are parsed:
//   1. open the model (its digest and shape) and the sample file, rejecting samples of another
//      model or of another shape;
//   2. per layer: split the samples into training and validation (sample_stream.h), train the MLP
//      (mlp_trainer.h) at a fixed rank or, with --rank auto, at each rank of the ladder from the
//      smallest until one qualifies (below);
//   3. round the weights to the stored dtype, evaluate the validation samples with the runtime's
//      predictor kernel (runtime/cpu/predictor_kernel.h) on those rounded weights, and choose the
//      highest logit threshold whose validation recall reaches the target (decision_threshold.h);
//      the reported recall, precision and densities are exactly the runtime's on those samples;
//   4. write model.predictor.pi (runtime/model/predictor_weights.h) atomically.
//
// --rank auto: what a predictor costs a token at run time is its own bytes plus the gate, up and
// down rows of the neurons it selects, so each rank r of the ladder has the expected cost
//   bytes(r) + predicted density(r) · FFN bytes of the layer
// at the threshold that gives the target recall on validation, and the rank of lowest cost is
// kept. The ladder is climbed from the smallest rank and stops at the first rank whose cost is not
// below the best so far (a larger one doubles the predictor's bytes), before training a rank
// whose bytes alone reach the best cost (it cannot win), or, with density_margin > 0, at a rank
// whose predicted density is within that margin of the true density (a shorter training).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "format/dtype.h"
#include "tools/train_predictor/train_report.h"

namespace pinfer {

// The ranks --rank auto tries, smallest first (each a multiple of 32, as q8_0 rows need).
inline const std::vector<int64_t>& DefaultRankLadder() {
  static const std::vector<int64_t> ladder = {32, 64, 128, 256, 512, 1024};
  return ladder;
}

struct TrainPredictorOptions {
  std::string model_path;
  std::string samples_path;  // "": beside the model (model.pi -> model.samples.zst)
  std::string output_path;   // "": beside the model (model.pi -> model.predictor.pi)
  int64_t rank = 0;          // 0: auto
  // --rank auto: the ladder's ranks up to max_rank and below n_ff (a wider hidden layer than the
  // output is no longer low-rank); at least the smallest rung.
  int64_t max_rank = 1024;
  double target_recall = 0.99;
  double density_margin = 0;  // --rank auto: see above (0: off)
  int64_t epochs = 12;
  int64_t batch_size = 64;
  double learning_rate = 1e-2;
  double max_pos_weight = 20;
  double validation_fraction = 0.1;
  uint64_t seed = 0;
  DType dtype = DType::kF16;
  // --dtype auto (the default): train and choose ranks in `dtype` (f16), then store q8_0 instead
  // when, in every layer, it holds the target recall at a predicted density at most 2% above
  // f16's (q8_0 needs dim and the ranks to be multiples of 32).
  bool dtype_auto = true;
  int threads = -1;                           // -1: all cores
  std::string device = "auto";                // auto (CUDA when LibTorch has it), cpu, cuda
  uint64_t memory_bytes = uint64_t{1} << 30;  // decoded samples held at once per layer
  std::string command_line;                   // provenance
  bool progress = true;                       // per-epoch lines on stderr
  // --powerinfer-compatible: a predictor that pi-export --format powerinfer can write as fc1/fc2:
  // no biases, and the logit threshold 0 in every layer (PowerInfer has one global threshold, and
  // reads the residual before ffn_norm, whose decisions equal ours only at 0). The target recall
  // is then not held; the report gives the recall reached.
  bool powerinfer_compatible = false;
};

// Checks the flags that need neither the model nor the samples; errors name the flag.
absl::Status ValidateTrainPredictorOptions(const TrainPredictorOptions& options);

// The ranks --rank auto tries for a layer of n_ff neurons.
std::vector<int64_t> RankLadder(int64_t max_rank, int64_t n_ff);

absl::StatusOr<TrainReport> TrainPredictor(const TrainPredictorOptions& options);

}  // namespace pinfer
