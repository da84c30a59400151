// The parts of pinfer_cuda that need no GPU: error conversion and the availability check. These
// run in CI.
#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "runtime/cuda/cuda_status.h"
#include "runtime/cuda/device.h"

namespace pinfer::cuda {
namespace {

using internal::CublasStatus;
using internal::CudaStatus;
using internal::LaunchStatus;

TEST(CudaStatusTest, SuccessIsOk) {
  EXPECT_TRUE(CudaStatus(cudaSuccess, "cudaMalloc").ok());
  EXPECT_TRUE(CublasStatus(CUBLAS_STATUS_SUCCESS, "cublasGemmEx").ok());
}

TEST(CudaStatusTest, ErrorsNameTheCallAndTheCode) {
  const absl::Status oom = CudaStatus(cudaErrorMemoryAllocation, "cudaMalloc(64 bytes)");
  EXPECT_EQ(oom.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StartsWith(oom.message(), "cudaMalloc(64 bytes): ")) << oom;
  EXPECT_TRUE(absl::StrContains(oom.message(), "cudaErrorMemoryAllocation")) << oom;

  const absl::Status no_device = CudaStatus(cudaErrorNoDevice, "cudaGetDeviceCount");
  EXPECT_EQ(no_device.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(no_device.message(), "cudaErrorNoDevice")) << no_device;

  EXPECT_TRUE(absl::StrContains(no_device.message(), "cudaGetDeviceCount: no NVIDIA GPU found"))
      << no_device;

  // What CUDA returns when no driver is installed (a machine without an NVIDIA GPU) names the
  // situation; a driver that is really too old is said to be that.
  const absl::Status driver = CudaStatus(cudaErrorInsufficientDriver, "cudaGetDeviceCount");
  EXPECT_EQ(driver.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(driver.message(), "cudaErrorInsufficientDriver: ")) << driver;
  int driver_version = -1;
  ASSERT_EQ(cudaDriverGetVersion(&driver_version), cudaSuccess);
  if (driver_version == 0) {
    EXPECT_TRUE(absl::StrContains(driver.message(), "cudaGetDeviceCount: no NVIDIA GPU found"))
        << driver;
  } else {
    EXPECT_TRUE(absl::StrContains(driver.message(), "older than this build's CUDA runtime"))
        << driver;
  }

  const absl::Status launch = LaunchStatus(cudaErrorInvalidConfiguration, "MatVec");
  EXPECT_EQ(launch.code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(absl::StartsWith(launch.message(), "launching MatVec: ")) << launch;
  EXPECT_TRUE(absl::StrContains(launch.message(), "cudaErrorInvalidConfiguration")) << launch;
  EXPECT_EQ(launch.message().find('\n'), absl::string_view::npos);
}

TEST(CudaStatusTest, CublasErrorsNameTheCallAndTheCode) {
  const absl::Status alloc = CublasStatus(CUBLAS_STATUS_ALLOC_FAILED, "cublasCreate");
  EXPECT_EQ(alloc.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StartsWith(alloc.message(), "cublasCreate: ")) << alloc;
  EXPECT_TRUE(absl::StrContains(alloc.message(), "CUBLAS_STATUS_ALLOC_FAILED")) << alloc;
  EXPECT_EQ(CublasStatus(CUBLAS_STATUS_INVALID_VALUE, "cublasGemmEx").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CublasStatus(CUBLAS_STATUS_EXECUTION_FAILED, "cublasGemmEx").code(),
            absl::StatusCode::kInternal);
}

// Without a device (CI) the check must fail cleanly with a reason naming the call; with one it
// must agree with the device count.
TEST(DeviceAvailabilityTest, IsReportedWithAReason) {
  const absl::Status available = CheckDeviceAvailable();
  const absl::StatusOr<int> count = DeviceCount();
  if (available.ok()) {
    ASSERT_TRUE(count.ok()) << count.status();
    EXPECT_GT(*count, 0);
    EXPECT_TRUE(DeviceAvailable());
  } else {
    EXPECT_FALSE(DeviceAvailable());
    EXPECT_EQ(available.code(), absl::StatusCode::kUnavailable) << available;
    EXPECT_TRUE(absl::StrContains(available.message(), "cudaGetDeviceCount")) << available;
    // No driver (CUDA: "insufficient driver") or no device: either way, no GPU.
    EXPECT_TRUE(absl::StrContains(available.message(), "no NVIDIA GPU found")) << available;
    EXPECT_TRUE(!count.ok() || *count == 0);
  }
}

}  // namespace
}  // namespace pinfer::cuda
