// The CUDA backend of an FFN part (ffn_part.h): at load, the part's rows of ffn_gate, ffn_up and
// ffn_down_t are gathered from the mapped model into device matrices (slot j holds neuron
// neurons[j]); per call, the FFN input goes up through a pinned buffer, cuda::HotFfn (the GPU's
// one row routine, applying a calibrated model's threshold) runs on the context's stream over the
// rows LayerFfn chose (every neuron of the part, or an n_ff-byte mask per token), and the partial
// sum comes back into a pinned buffer. Finish synchronises once and adds it to the residual.
//
// It lives in runtime/exec, not runtime/cuda: it is an executor part (it knows the Model and the
// PartBackend interface), while runtime/cuda stays a kernel library over device memory with no
// dependency on the model or the executor. This header has no CUDA types; in a build without the
// CUDA backend the functions return Unavailable.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/exec/backend.h"
#include "runtime/exec/ffn_part.h"
#include "runtime/model/model.h"
#include "runtime/model/predictor_weights.h"

namespace pinfer {

// Whether this build has the CUDA backend: false when nvcc was not found at configure time.
bool CudaBackendBuilt();
// OK when the CUDA FFN parts can run here; otherwise why not (not built, no device...).
absl::Status CheckCudaAvailable();
// "NVIDIA H100 80GB HBM3 (sm_90, ...)" for the current device.
absl::StatusOr<std::string> DescribeCudaDevice();

// What every layer's CUDA part shares: the CUDA backend (cuda_backend.h: its stream, its memory
// accounting, the one weight upload), the timing events and the pinned and device buffers the
// hidden states travel through (one call runs at a time). Opaque here. `device` null: a CUDA
// backend of its own; otherwise it must be the CUDA backend, whose stream the parts then share
// with the dense work of device-resident layers.
class CudaFfnContext;
absl::StatusOr<std::shared_ptr<CudaFfnContext>> CreateCudaFfnContext(
    const Model& model, std::shared_ptr<Backend> device = nullptr);

// Uploads layer `layer`'s rows of `neurons` (ascending, non-empty; through Backend::UploadWeight)
// and returns the backend. A call with PartCall::on_device reads and adds on the device (no
// copies, no synchronisation: the executor's stream order does it); the others copy the input up
// and the partial sum back, and Finish waits for it. With
// a `predictor` (read and checked against the model), its layer is uploaded too and runs on the
// GPU (cuda::PredictActiveNeurons → the masks HotFfn reads): the backend then selects on the
// device (selects_on_device()), so only hidden states cross the bus (the plan's
// predictor_on_gpu). `threshold` >= 0: the layer's calibrated τ; < 0: none.
absl::StatusOr<std::unique_ptr<PartBackend>> CreateCudaPartBackend(
    std::shared_ptr<CudaFfnContext> context, const Model& model, int64_t layer,
    std::vector<int32_t> neurons, std::shared_ptr<const PredictorWeights> predictor,
    float threshold);

// Device bytes of the weights uploaded so far through `context` (its backend's FFN and predictor).
uint64_t CudaFfnUploadedBytes(const CudaFfnContext& context);

}  // namespace pinfer
