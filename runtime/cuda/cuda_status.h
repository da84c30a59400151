// CUDA runtime and cuBLAS error codes as absl::Status, each naming the call that failed. Internal
// to pinfer_cuda (it includes the CUDA headers); the public headers never do.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <string_view>

#include "absl/status/status.h"

namespace pinfer::cuda::internal {

// OkStatus for cudaSuccess, otherwise "<call>: <description> (<cudaErrorName>)" with a code that
// says what kind of failure it is; no device, or no driver at all (which CUDA reports as an
// "insufficient" driver), reads "<call>: no NVIDIA GPU found (...)" with CUDA's code and words in
// the parentheses (ResourceExhausted for out-of-memory, Unavailable when there is
// no usable device or driver, Internal otherwise).
absl::Status CudaStatus(cudaError_t error, std::string_view call);
// The same for cuBLAS ("<call>: <description> (CUBLAS_STATUS_...)").
absl::Status CublasStatus(cublasStatus_t status, std::string_view call);

// The status of the last kernel launch on this thread (launch-configuration errors), naming the
// kernel. Kernels report execution errors at the next synchronisation, as CUDA does.
absl::Status LaunchStatus(cudaError_t error, std::string_view kernel);

}  // namespace pinfer::cuda::internal
