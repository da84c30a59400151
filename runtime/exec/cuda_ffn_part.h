// The GPU part of a hybrid FFN layer (ffn_part.h) on CUDA: at load, the plan's hot rows of
// ffn_gate, ffn_up and ffn_down_t are gathered from the mapped model into device matrices (slot j
// holds neuron neurons[j]); per batch, the FFN input goes up through a pinned buffer, the hot rows'
// FFN runs on the context's stream (cuda::HotSparseFfn per token with the active mask, or dense
// gathered products for a prompt batch without a selector), and the partial sum comes back into a
// pinned buffer. Finish synchronises once and adds it to the residual stream.
//
// It lives in runtime/exec, not runtime/cuda: it is an executor part (it knows the Model, the
// FfnPart interface and the plan's partition), while runtime/cuda stays a kernel library over
// device memory with no dependency on the model or the executor (DESIGN.md layering). This header
// has no CUDA types; in a build without the CUDA backend the functions return Unavailable.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/exec/ffn_part.h"
#include "runtime/model/model.h"

namespace pinfer {

// Whether this build has the CUDA backend: false when nvcc was not found at configure time.
bool CudaBackendBuilt();
// OK when the CUDA FFN parts can run here; otherwise why not (not built, no device...).
absl::Status CheckCudaAvailable();
// "NVIDIA H100 80GB HBM3 (sm_90, ...)" for the current device.
absl::StatusOr<std::string> DescribeCudaDevice();

// What every layer's CUDA part shares: the stream, the timing events and the pinned and device
// buffers the hidden states travel through (one call runs at a time). Opaque here.
class CudaFfnContext;
absl::StatusOr<std::shared_ptr<CudaFfnContext>> CreateCudaFfnContext(const Model& model);

// Uploads layer `layer`'s rows of `neurons` (ascending, non-empty) and returns the part. With a
// `predictor`, its layer is uploaded too and runs on the GPU (cuda::PredictActiveNeurons → the
// mask HotSparseFfn reads): the part then uses its own prediction for the hot rows instead of the
// call's active sets, so only hidden states cross the bus (the plan's predictor_on_gpu). Without
// one, the call's active sets (the CPU predictor's) are uploaded as an n_ff-byte mask per token.
absl::StatusOr<std::unique_ptr<FfnPart>> CreateCudaFfnPart(
    std::shared_ptr<CudaFfnContext> context, const Model& model, int64_t layer,
    std::vector<int32_t> neurons, std::shared_ptr<const PredictorWeights> predictor = nullptr);

// Device bytes of the weights uploaded so far through `context`.
uint64_t CudaFfnUploadedBytes(const CudaFfnContext& context);

}  // namespace pinfer
