#include "runtime/cuda/sparse_ffn.h"

#include "absl/strings/str_format.h"
#include "runtime/cuda/checks.h"
#include "runtime/cuda/cuda_status.h"
#include "runtime/cuda/launch.h"
#include "runtime/cuda/stream_internal.h"

namespace pinfer::cuda {

absl::Status HotSparseFfn(Stream& stream, const HotFfnWeights& weights, ActivationKind act,
                          float param, const float* x, const uint8_t* active_mask, float* y,
                          int32_t* computed_count, float threshold) {
  constexpr std::string_view kOp = "HotSparseFfn";
  absl::StatusOr<internal::WeightsArg> gate =
      internal::CheckWeights(weights.gate, "HotSparseFfn gate");
  if (!gate.ok()) return gate.status();
  absl::StatusOr<internal::WeightsArg> up = internal::CheckWeights(weights.up, "HotSparseFfn up");
  if (!up.ok()) return up.status();
  absl::StatusOr<internal::WeightsArg> down =
      internal::CheckWeights(weights.down, "HotSparseFfn down");
  if (!down.ok()) return down.status();
  const int64_t n_hot = gate->rows;
  const int64_t dim = gate->cols;
  if (up->type != gate->type || up->rows != n_hot || up->cols != dim || down->rows != n_hot ||
      down->cols != dim) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: gate [%d, %d], up [%d, %d] and down [%d, %d] must have one shape, gate and up one "
        "dtype",
        kOp, gate->rows, gate->cols, up->rows, up->cols, down->rows, down->cols));
  }
  const cudaStream_t native = internal::NativeStream(stream);
  if (n_hot == 0) {
    if (computed_count == nullptr) return absl::OkStatus();
    return internal::CudaStatus(cudaMemsetAsync(computed_count, 0, sizeof(int32_t), native),
                                "cudaMemsetAsync (HotSparseFfn count)");
  }
  if (absl::Status s = internal::CheckNotNull(weights.neuron_ids, kOp, "neuron_ids"); !s.ok()) {
    return s;
  }
  if (absl::Status s = internal::CheckNotNull(x, kOp, "x"); !s.ok()) return s;
  if (absl::Status s = internal::CheckNotNull(y, kOp, "y"); !s.ok()) return s;
  if (absl::Status s = internal::CheckActivationAlignment(*gate, x, kOp); !s.ok()) return s;

  internal::ScratchArena::Scope scratch(internal::Scratch(stream));
  absl::StatusOr<int32_t*> slots = scratch.Allocate<int32_t>(static_cast<size_t>(n_hot));
  if (!slots.ok()) return slots.status();
  absl::StatusOr<int32_t*> count = scratch.Allocate<int32_t>(1);
  if (!count.ok()) return count.status();
  absl::StatusOr<float*> a = scratch.Allocate<float>(static_cast<size_t>(n_hot));
  if (!a.ok()) return a.status();

  if (absl::Status s =
          internal::LaunchStatus(internal::LaunchCompactHotSlots(active_mask, weights.neuron_ids,
                                                                 n_hot, *slots, *count, native),
                                 "HotSparseFfn (active hot slots)");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = internal::LaunchStatus(
          internal::LaunchGateUp(*gate, *up, *slots, *count, n_hot, x, act, param, threshold, *a,
                                 internal::SmCount(stream), native),
          "HotSparseFfn (gate/up)");
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          SparseTransposedAccumulate(stream, weights.down, *slots, *count, n_hot, *a, y);
      !s.ok()) {
    return s;
  }
  if (computed_count == nullptr) return absl::OkStatus();
  return internal::CudaStatus(
      cudaMemcpyAsync(computed_count, *count, sizeof(int32_t), cudaMemcpyDeviceToDevice, native),
      "cudaMemcpyAsync (HotSparseFfn count)");
}

absl::Status HotFfn(Stream& stream, const HotFfnWeights& weights, const HotFfnRule& rule,
                    const float* x, int64_t n, const uint8_t* masks, int64_t mask_stride, float* y,
                    int32_t* computed) {
  constexpr std::string_view kOp = "HotFfn";
  if (absl::Status s = internal::CheckCount(n, kOp, "tokens"); !s.ok()) return s;
  const int64_t dim = weights.gate.cols, n_hot = weights.gate.rows;
  if (masks != nullptr || n == 1) {
    for (int64_t t = 0; t < n; ++t) {
      if (absl::Status s =
              HotSparseFfn(stream, weights, rule.act, rule.param, x + t * dim,
                           masks == nullptr ? nullptr : masks + t * mask_stride, y + t * dim,
                           computed == nullptr ? nullptr : computed + t, rule.threshold);
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }
  // A batch over every hot neuron: dense products over the gathered rows, which read each row
  // once for the whole batch.
  internal::ScratchArena::Scope scratch(internal::Scratch(stream));
  const size_t products = static_cast<size_t>(n * n_hot);
  absl::StatusOr<float*> gate = scratch.Allocate<float>(products);
  if (!gate.ok()) return gate.status();
  absl::StatusOr<float*> up = scratch.Allocate<float>(products);
  if (!up.ok()) return up.status();
  absl::StatusOr<float*> a = scratch.Allocate<float>(products);
  if (!a.ok()) return a.status();
  for (absl::Status s :
       {MatMul(stream, weights.gate, x, n, *gate), MatMul(stream, weights.up, x, n, *up),
        FfnCombine(stream, rule.act, rule.param, *gate, *up, static_cast<int64_t>(products), *a,
                   rule.threshold),
        MatMulTransposedAccumulate(stream, weights.down, *a, n, y)}) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace pinfer::cuda
