// Evaluation of one layer's activation predictor (model.predictor.pi, written by
// pi-train-predictor): a low-rank MLP from the FFN input x to one logit per FFN neuron,
//   h = relu(W1 x + b1)       W1 [rank, dim]   (output-major: one row per output, as every .pi
//   z = W2 h + b2             W2 [n_ff, rank]   weight, so both products are MatVec/MatMul)
// and neuron i is predicted active when z_i >= logit_threshold, which is sigmoid(z_i) >= threshold
// without computing the sigmoid. The products use kernels.h (any weight dtype: f16 and q8_0 in
// practice); bias, ReLU and the selection are plain loops, negligible next to the products.
//
// The result is the set of predicted-active neurons of each token, as ascending neuron ids and,
// when asked, as a bit mask in the sample file's layout (neuron i is bit i % 8, least significant
// first, of byte i / 8; format/sample_file.h).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "runtime/cpu/kernels.h"

namespace pinfer::cpu {

struct PredictorView {
  MatrixView w1;              // [rank, dim]
  const float* b1 = nullptr;  // [rank]
  MatrixView w2;              // [n_ff, rank]
  const float* b2 = nullptr;  // [n_ff]
  float logit_threshold = 0;  // active when z_i >= logit_threshold

  int64_t dim() const { return w1.cols; }
  int64_t rank() const { return w1.rows; }
  int64_t n_ff() const { return w2.rows; }
};

// Bytes of one token's bit mask.
inline int64_t PredictorMaskBytes(int64_t n_ff) { return (n_ff + 7) / 8; }

// Reusable buffers, so that evaluating a token allocates nothing once they have grown.
struct PredictorScratch {
  std::vector<float> hidden;  // [n, rank]
  std::vector<float> logits;  // [n, n_ff]
};

// The predicted active sets of a batch: token t's neurons are ids[offsets[t], offsets[t + 1]),
// ascending.
struct PredictedActive {
  std::vector<int32_t> ids;
  std::vector<int64_t> offsets;  // n + 1 entries

  int64_t tokens() const { return offsets.empty() ? 0 : static_cast<int64_t>(offsets.size()) - 1; }
  std::span<const int32_t> Token(int64_t t) const {
    return std::span<const int32_t>(ids).subspan(
        static_cast<size_t>(offsets[static_cast<size_t>(t)]),
        static_cast<size_t>(offsets[static_cast<size_t>(t) + 1] - offsets[static_cast<size_t>(t)]));
  }
};

// Z [n, n_ff] = W2 · relu(W1 · X + b1) + b2 for X [n, dim]; scratch.hidden and scratch.logits hold
// the results (logits is returned). Uses MatVec for one token and MatMul for several.
std::span<const float> PredictorLogits(const PredictorView& predictor, const float* x, int64_t n,
                                       PredictorScratch& scratch);

// Appends to `ids` the neurons with logits[i] >= logit_threshold, ascending; returns how many.
int64_t SelectActive(const float* logits, int64_t n_ff, float logit_threshold,
                     std::vector<int32_t>& ids);
// mask (PredictorMaskBytes(n_ff) bytes) = the bit mask of logits[i] >= logit_threshold.
void SelectActiveMask(const float* logits, int64_t n_ff, float logit_threshold, uint8_t* mask);

// Predicts the active neurons of the n tokens X [n, dim] into `active` (replacing its content) and,
// when `masks` is not null, their bit masks into masks [n, PredictorMaskBytes(n_ff)].
void PredictActive(const PredictorView& predictor, const float* x, int64_t n,
                   PredictorScratch& scratch, PredictedActive& active, uint8_t* masks = nullptr);

namespace reference {
// PredictorLogits with the scalar reference products (reference_kernels.h), one token at a time.
std::span<const float> PredictorLogits(const PredictorView& predictor, const float* x, int64_t n,
                                       PredictorScratch& scratch);
}  // namespace reference

}  // namespace pinfer::cpu
