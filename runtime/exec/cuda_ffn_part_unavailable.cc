// cuda_ffn_part.h in a build without the CUDA backend (nvcc not found at configure time).
#include "runtime/exec/cuda_ffn_part.h"

namespace pinfer {
namespace {

absl::Status NotBuilt() {
  return absl::UnavailableError(
      "this build has no CUDA backend (nvcc was not found when it was configured)");
}

}  // namespace

class CudaFfnContext {};

bool CudaBackendBuilt() { return false; }
absl::Status CheckCudaAvailable() { return NotBuilt(); }
absl::StatusOr<std::string> DescribeCudaDevice() { return NotBuilt(); }
absl::StatusOr<std::shared_ptr<CudaFfnContext>> CreateCudaFfnContext(const Model&,
                                                                   std::shared_ptr<Backend>) {
  return NotBuilt();
}
absl::StatusOr<std::unique_ptr<PartBackend>> CreateCudaPartBackend(
    std::shared_ptr<CudaFfnContext>, const Model&, int64_t, std::vector<int32_t>,
    std::shared_ptr<const PredictorWeights>, float) {
  return NotBuilt();
}
uint64_t CudaFfnUploadedBytes(const CudaFfnContext&) { return 0; }

}  // namespace pinfer
