// cuda_backend.h in a build without the CUDA backend (nvcc not found at configure time).
#include "runtime/exec/cuda_backend.h"

namespace pinfer {

absl::StatusOr<std::shared_ptr<Backend>> CreateCudaBackend() {
  return absl::UnavailableError(
      "this build has no CUDA backend (nvcc was not found when it was configured)");
}

}  // namespace pinfer
