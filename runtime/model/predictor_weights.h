// model.predictor.pi: one activation predictor per layer, written by pi-train-predictor and mapped
// by the runtime (the sparse CPU FFN, the CUDA hot/cold split). A layer's predictor is a low-rank
// MLP from the FFN input x (after ffn_norm and the norm activation) to one logit per neuron:
//   h = relu(W1 x + b1),  z = W2 h + b2;  neuron i is predicted active when z_i >= logit_threshold
// (equivalently sigmoid(z_i) >= threshold). Evaluate it with runtime/cpu/predictor_kernel.h
// (View() gives its input) or, on a GPU, runtime/cuda/predictor.h with
// PredictorLayout::kOutputMajor.
//
// Artifact kind: predictor. Metadata:
//   model.digest                 string   content digest of the model it was trained for
//   predictor.n_layers           int
//   predictor.dim                int      length of x (the model's dim)
//   predictor.n_ff               int      neurons per layer
//   predictor.rank               int[]    hidden width r of each layer (ranks may differ by layer)
//   predictor.logit_threshold    float[]  per layer: the decision on the logit, z_i >= it; the
//                                         runtime compares logits and never computes a sigmoid
//   predictor.threshold          float[]  per layer: the same decision as a probability,
//                                         sigmoid(logit_threshold), for kernels that compare p_i
//   predictor.target_recall      float    recall the thresholds were chosen for on validation
//   predictor.fire_rule          string   (optional) what "fired" meant in the training samples:
//                                         "nonzero" (ReLU family) or "threshold" (calibrated τ)
// Report, measured on the held-out validation samples with the stored (rounded) weights and the
// stored threshold (informational; a reader accepts their absence):
//   predictor.recall             float[]  per layer: predicted-and-fired / fired
//   predictor.precision          float[]  per layer: predicted-and-fired / predicted
//   predictor.predicted_density  float[]  per layer: mean fraction of neurons predicted active
//   predictor.true_density       float[]  per layer: mean fraction of neurons that fired
//   predictor.train_samples      int[]    per layer: samples trained on
//   predictor.validation_samples int[]    per layer: samples held out
//   provenance.*                          tool, version, arguments, sample file
// Tensors, for each layer l (weights OUTPUT-MAJOR, one row per output, like every .pi weight):
//   blk.<l>.predictor.w1   f16 | q8_0 (any weight dtype)  [rank_l, dim]
//   blk.<l>.predictor.b1   f32                            [rank_l]
//   blk.<l>.predictor.w2   same dtype as w1               [n_ff, rank_l]
//   blk.<l>.predictor.b2   f32                            [n_ff]
// Every layer's weights have the same dtype. q8_0 needs dim and every rank to be multiples of 32.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "format/dtype.h"
#include "format/metadata.h"
#include "runtime/cpu/predictor_kernel.h"

namespace pinfer {

class Model;

// "dir/model.pi" -> "dir/model.predictor.pi".
std::string DefaultPredictorPath(const std::string& model_path);

// Tensor names of layer l's predictor.
std::string PredictorTensorName(int64_t layer, const char* part);  // part: "w1", "b1", "w2", "b2"

// log(p / (1 - p)) and its inverse, in the precision the artifact stores.
float LogitOf(double probability);
float SigmoidOf(double logit);

struct PredictorLayerReport {
  double recall = 0;
  double precision = 0;
  double predicted_density = 0;
  double true_density = 0;
  int64_t train_samples = 0;
  int64_t validation_samples = 0;
};

struct PredictorLayer {
  int64_t rank = 0;
  float logit_threshold = 0;
  float threshold = 0.5f;       // SigmoidOf(logit_threshold)
  std::span<const uint8_t> w1;  // [rank, dim] encoded in the predictor's dtype
  std::span<const float> b1;    // [rank]
  std::span<const uint8_t> w2;  // [n_ff, rank]
  std::span<const float> b2;    // [n_ff]
  PredictorLayerReport report;
};

struct PredictorWeights {
  std::string model_digest;
  int64_t dim = 0;
  int64_t n_ff = 0;
  DType dtype = DType::kF16;
  double target_recall = 0;
  std::string fire_rule;  // "" when unknown
  std::vector<PredictorLayer> layers;
  // Keeps the memory the layers' spans point into alive: the mapped file after Read(), the
  // trainer's buffers before Write().
  std::shared_ptr<const void> storage;

  int64_t n_layers() const { return static_cast<int64_t>(layers.size()); }
  // The kernel's view of layer l (zero copies).
  cpu::PredictorView View(int64_t layer) const;
  // Bytes of layer l's weights and biases as stored.
  uint64_t LayerBytes(int64_t layer) const;

  // Shapes, byte sizes, dtypes and thresholds; errors say which layer.
  absl::Status Validate() const;
  // Writes atomically; `extra` adds provenance keys.
  absl::Status Write(const std::string& path, const Metadata& extra = Metadata()) const;
  // Maps and validates the file; when `expected_model_digest` is given, a predictor trained for
  // another model is rejected with an error naming both digests.
  static absl::StatusOr<PredictorWeights> Read(
      const std::string& path, std::optional<std::string> expected_model_digest = std::nullopt);
  // Read() for `model`: also rejects a predictor of another model (digest) or of another shape
  // (layers, dim, n_ff). The one place the predictor is checked against the model.
  static absl::StatusOr<PredictorWeights> ReadFor(const std::string& path, const Model& model);
};

}  // namespace pinfer
