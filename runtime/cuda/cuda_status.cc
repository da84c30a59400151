#include "runtime/cuda/cuda_status.h"

#include "absl/strings/str_cat.h"
#include "format/strings.h"

namespace pinfer::cuda::internal {
namespace {

// Without a driver (no NVIDIA GPU in the machine) CUDA says "CUDA driver version is insufficient
// for CUDA runtime version", which sends users looking for a driver update: name the situation,
// and keep CUDA's own words and code in parentheses. cudaDriverGetVersion reports 0 when no
// driver is installed; a driver that is merely too old keeps CUDA's message, with both versions.
std::string DescribeError(cudaError_t error) {
  const std::string raw = absl::StrCat(cudaGetErrorName(error), ": ", cudaGetErrorString(error));
  int driver = 0, runtime = 0;
  switch (error) {
    case cudaErrorNoDevice:
      return absl::StrCat("no NVIDIA GPU found (", raw, ")");
    case cudaErrorInsufficientDriver:
      if (cudaDriverGetVersion(&driver) != cudaSuccess || driver == 0) {
        return absl::StrCat("no NVIDIA GPU found (no NVIDIA driver; ", raw, ")");
      }
      (void)cudaRuntimeGetVersion(&runtime);
      return absl::StrCat("the NVIDIA driver supports CUDA ", driver / 1000, ".",
                          driver % 1000 / 10, ", older than this build's CUDA runtime ",
                          runtime / 1000, ".", runtime % 1000 / 10, " (", raw, ")");
    default:
      return absl::StrCat(cudaGetErrorString(error), " (", cudaGetErrorName(error), ")");
  }
}

}  // namespace

absl::Status CudaStatus(cudaError_t error, std::string_view call) {
  if (error == cudaSuccess) return absl::OkStatus();
  // The runtime also keeps the error as its "last error", which the next kernel launch's check
  // (cudaGetLastError) would report as its own: clear it here, where it is reported. Sticky errors
  // (a crashed kernel) stay, as they must.
  (void)cudaGetLastError();
  const std::string message = absl::StrCat(Sv(call), ": ", DescribeError(error));
  switch (error) {
    case cudaErrorMemoryAllocation:
      return absl::ResourceExhaustedError(message);
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorDevicesUnavailable:
    case cudaErrorInvalidDevice:
    case cudaErrorSystemDriverMismatch:
    case cudaErrorCompatNotSupportedOnDevice:
    case cudaErrorNoKernelImageForDevice:
      return absl::UnavailableError(message);
    case cudaErrorInvalidValue:
      return absl::InvalidArgumentError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::Status CublasStatus(cublasStatus_t status, std::string_view call) {
  if (status == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  const std::string message = absl::StrCat(Sv(call), ": ", cublasGetStatusString(status), " (",
                                           cublasGetStatusName(status), ")");
  switch (status) {
    case CUBLAS_STATUS_ALLOC_FAILED:
      return absl::ResourceExhaustedError(message);
    case CUBLAS_STATUS_NOT_INITIALIZED:
    case CUBLAS_STATUS_ARCH_MISMATCH:
      return absl::UnavailableError(message);
    case CUBLAS_STATUS_INVALID_VALUE:
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return absl::InvalidArgumentError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::Status LaunchStatus(cudaError_t error, std::string_view kernel) {
  return CudaStatus(error, absl::StrCat("launching ", Sv(kernel)));
}

}  // namespace pinfer::cuda::internal
