#include "runtime/cuda/predictor.h"

#include <cmath>

#include "absl/strings/str_format.h"
#include "runtime/cuda/buffers.h"
#include "runtime/cuda/checks.h"
#include "runtime/cuda/cuda_status.h"
#include "runtime/cuda/launch.h"
#include "runtime/cuda/stream_internal.h"

namespace pinfer::cuda {

int64_t DevicePredictor::dim() const {
  return layout == PredictorLayout::kOutputMajor ? w1.cols : w1.rows;
}
int64_t DevicePredictor::rank() const {
  return layout == PredictorLayout::kOutputMajor ? w1.rows : w1.cols;
}
int64_t DevicePredictor::n_ff() const {
  return layout == PredictorLayout::kOutputMajor ? w2.rows : w2.cols;
}

namespace {

// out = W in (zeroing out first for the input-major layout, which accumulates).
absl::Status Project(Stream& stream, const DeviceMatrix& w, PredictorLayout layout, const float* in,
                     float* out, int64_t out_size) {
  if (layout == PredictorLayout::kOutputMajor) return MatVec(stream, w, in, out);
  if (absl::Status s = ZeroDevice(stream, out, static_cast<size_t>(out_size) * sizeof(float));
      !s.ok()) {
    return s;
  }
  return MatVecTransposedAccumulate(stream, w, in, out);
}

}  // namespace

absl::Status PredictActiveNeurons(Stream& stream, const DevicePredictor& weights, const float* x,
                                  float threshold, int32_t* active_ids, int32_t* active_count,
                                  uint8_t* active_mask) {
  constexpr std::string_view kOp = "PredictActiveNeurons";
  if (absl::StatusOr<internal::WeightsArg> w1 = internal::CheckWeights(weights.w1, "predictor W1");
      !w1.ok()) {
    return w1.status();
  }
  if (absl::StatusOr<internal::WeightsArg> w2 = internal::CheckWeights(weights.w2, "predictor W2");
      !w2.ok()) {
    return w2.status();
  }
  const bool output_major = weights.layout == PredictorLayout::kOutputMajor;
  const int64_t w2_rank = output_major ? weights.w2.cols : weights.w2.rows;
  if (weights.rank() <= 0 || w2_rank != weights.rank() || weights.n_ff() <= 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: W1 [%d, %d] and W2 [%d, %d] do not chain (%s layout)", kOp,
                        weights.w1.rows, weights.w1.cols, weights.w2.rows, weights.w2.cols,
                        output_major ? "output-major" : "input-major"));
  }
  if (!(threshold >= 0.0f && threshold <= 1.0f)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: threshold %g is not in [0, 1]", kOp, threshold));
  }
  if (absl::Status s = internal::CheckNotNull(x, kOp, "x"); !s.ok()) return s;
  if (absl::Status s = internal::CheckNotNull(active_ids, kOp, "active_ids"); !s.ok()) return s;
  if (absl::Status s = internal::CheckNotNull(active_count, kOp, "active_count"); !s.ok()) {
    return s;
  }

  const int64_t rank = weights.rank();
  const int64_t n_ff = weights.n_ff();
  internal::ScratchArena::Scope scratch(internal::Scratch(stream));
  absl::StatusOr<float*> hidden = scratch.Allocate<float>(static_cast<size_t>(rank));
  if (!hidden.ok()) return hidden.status();
  absl::StatusOr<float*> logits = scratch.Allocate<float>(static_cast<size_t>(n_ff));
  if (!logits.ok()) return logits.status();
  const cudaStream_t native = internal::NativeStream(stream);

  if (absl::Status s = Project(stream, weights.w1, weights.layout, x, *hidden, rank); !s.ok()) {
    return s;
  }
  if (absl::Status s = internal::LaunchStatus(
          internal::LaunchBiasActivation(*hidden, weights.b1, rank, /*relu=*/true, native),
          "PredictActiveNeurons (bias + relu)");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = Project(stream, weights.w2, weights.layout, *hidden, *logits, n_ff);
      !s.ok()) {
    return s;
  }
  return internal::LaunchStatus(
      internal::LaunchCompactPredicted(*logits, weights.b2, n_ff, threshold, active_ids,
                                       active_count, active_mask, native),
      "PredictActiveNeurons (threshold + compaction)");
}

}  // namespace pinfer::cuda
