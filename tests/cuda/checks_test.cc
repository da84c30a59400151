// Argument checking and kernel selection of pinfer_cuda: host-only logic, runs in CI.
#include "runtime/cuda/checks.h"

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "runtime/cuda/launch.h"

namespace pinfer::cuda::internal {
namespace {

// Fake device addresses: the checks only look at the numbers.
const void* Address(uintptr_t value) { return reinterpret_cast<const void*>(value); }

TEST(CheckWeightsTest, AcceptsEveryWeightDType) {
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0}) {
    const DeviceMatrix m = MakeDeviceMatrix(dtype, 7, 64, Address(4096));
    absl::StatusOr<WeightsArg> arg = CheckWeights(m, "MatVec");
    ASSERT_TRUE(arg.ok()) << arg.status();
    EXPECT_EQ(arg->rows, 7);
    EXPECT_EQ(arg->cols, 64);
    EXPECT_EQ(arg->row_bytes, m.row_bytes);
  }
}

TEST(CheckWeightsTest, RejectsBadMatricesWithOneLine) {
  struct Case {
    DeviceMatrix m;
    const char* expected;
  };
  DeviceMatrix wrong_row_bytes = MakeDeviceMatrix(DType::kF16, 4, 64, Address(4096));
  wrong_row_bytes.row_bytes = 100;
  const Case cases[] = {
      {MakeDeviceMatrix(DType::kI32, 4, 64, Address(4096)), "dtype i32 are not supported"},
      {MakeDeviceMatrix(DType::kQ4_0, 4, 48, Address(4096)), "48 columns do not fit q4_0"},
      {wrong_row_bytes, "row_bytes 100 does not match"},
      {MakeDeviceMatrix(DType::kF32, 4, 64, nullptr), "weight data is null"},
      {MakeDeviceMatrix(DType::kF32, 4, 64, Address(4098)), "not 4-byte aligned"},
      {MakeDeviceMatrix(DType::kQ8_0, 4, 64, Address(4097)), "not 2-byte aligned"},
      {MakeDeviceMatrix(DType::kF32, 4, 0, Address(4096)), "bad weight shape"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<WeightsArg> arg = CheckWeights(c.m, "MatVec");
    ASSERT_FALSE(arg.ok()) << c.expected;
    EXPECT_EQ(arg.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StartsWith(arg.status().message(), "MatVec: ")) << arg.status();
    EXPECT_TRUE(absl::StrContains(arg.status().message(), c.expected)) << arg.status();
  }
}

TEST(CheckWeightsTest, QuantizedActivationsMustBeAligned) {
  const WeightsArg q4 = *CheckWeights(MakeDeviceMatrix(DType::kQ4_0, 4, 64, Address(4096)), "op");
  const WeightsArg f16 = *CheckWeights(MakeDeviceMatrix(DType::kF16, 4, 64, Address(4096)), "op");
  const float* aligned = static_cast<const float*>(Address(8192));
  const float* misaligned = static_cast<const float*>(Address(8196));
  EXPECT_TRUE(CheckActivationAlignment(q4, aligned, "op").ok());
  EXPECT_FALSE(CheckActivationAlignment(q4, misaligned, "op").ok());
  EXPECT_TRUE(CheckActivationAlignment(f16, misaligned, "op").ok());  // takes the scalar path
}

TEST(KernelChoiceTest, VectorPathNeedsAlignedRowsAndActivations) {
  WeightsArg w;
  w.type = WeightType::kF16;
  w.data = static_cast<const uint8_t*>(Address(4096));
  w.cols = 64;
  w.row_bytes = 128;
  EXPECT_TRUE(UseVectorPath(w, Address(256)));
  EXPECT_FALSE(UseVectorPath(w, Address(260)));  // x not 16-byte aligned
  w.cols = 67;                                   // odd rows: 134 bytes
  w.row_bytes = 134;
  EXPECT_FALSE(UseVectorPath(w, Address(256)));
  w.type = WeightType::kQ4_0;  // quantized weights always take the block path
  EXPECT_TRUE(UseVectorPath(w, Address(260)));
  w.type = WeightType::kF32;
  w.cols = 64;
  w.row_bytes = 256;
  EXPECT_TRUE(UseVectorPath(w, nullptr));  // no activation vector (transposed kernels)
}

TEST(KernelChoiceTest, TransposedSplitsStayInRange) {
  WeightsArg w;
  w.type = WeightType::kQ4_0;
  w.data = static_cast<const uint8_t*>(Address(4096));
  w.rows = 11008;
  w.cols = 4096;
  w.row_bytes = 4096 / 32 * 18;
  EXPECT_EQ(TransposedColumnTiles(w), 4);  // 128 blocks per row, 32 per tile
  const int splits = ChooseTransposedSplits(w, w.rows, 132);
  EXPECT_GE(splits, 1);
  EXPECT_LE(splits * 8, w.rows + 7);
  EXPECT_EQ(ChooseTransposedSplits(w, 3, 132), 1);  // few rows: one split
  EXPECT_EQ(ChooseTransposedSplits(w, 0, 132), 1);
}

}  // namespace
}  // namespace pinfer::cuda::internal
