// Backend::UploadWeight, the one way a weight reaches a device: rows in the order asked, and the
// CPU's q4_0x16 reordering undone for the device kernels (which read plain q4_0), while the host
// backend keeps the mapped tensor as it is.
#include <cstring>
#include <random>
#include <vector>

#include "format/quant.h"
#include "gtest/gtest.h"
#include "runtime/exec/backend.h"
#include "runtime/exec/cpu_backend.h"

namespace pinfer {
namespace {

constexpr int64_t kRows = 3;
constexpr int64_t kCols = 544;  // 17 blocks: one reordered group of 16 and a plain tail block

struct Matrices {
  std::vector<uint8_t> q4_0, q4_0x16;
  size_t row_bytes = 0;
};

Matrices MakeMatrices() {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  std::vector<float> row(kCols);
  Matrices m;
  m.row_bytes = kCols / 32 * sizeof(BlockQ4_0);
  m.q4_0.resize(kRows * m.row_bytes);
  for (int64_t r = 0; r < kRows; ++r) {
    for (float& v : row) v = normal(rng);
    QuantizeRowQ4_0(row.data(), reinterpret_cast<BlockQ4_0*>(m.q4_0.data() + r * m.row_bytes),
                    kCols);
  }
  m.q4_0x16.resize(m.q4_0.size());
  ConvertQ4_0ToQ4_0x16(m.q4_0.data(), m.q4_0x16.data(), kRows, kCols);
  return m;
}

TEST(BackendUpload, DevicesGetPlainQ4_0RowsInTheOrderAsked) {
  const Matrices m = MakeMatrices();
  ASSERT_NE(std::memcmp(m.q4_0.data(), m.q4_0x16.data(), m.q4_0.size()), 0);
  const cpu::MatrixView x16 = cpu::MakeMatrixView(DType::kQ4_0x16, kRows, kCols, m.q4_0x16.data());
  std::unique_ptr<CpuBackend> device = CpuBackend::StandIn();

  absl::StatusOr<BackendMatrix> all = device->UploadWeight(x16, {}, MemoryPart::kAttention);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->dtype, DType::kQ4_0);
  ASSERT_EQ(all->bytes(), m.q4_0.size());
  EXPECT_EQ(std::memcmp(all->data, m.q4_0.data(), m.q4_0.size()), 0);

  const std::vector<int32_t> rows = {2, 0};
  absl::StatusOr<BackendMatrix> some = device->UploadWeight(x16, rows, MemoryPart::kFfn);
  ASSERT_TRUE(some.ok()) << some.status();
  EXPECT_EQ(some->dtype, DType::kQ4_0);
  ASSERT_EQ(some->rows, 2);
  for (size_t j = 0; j < rows.size(); ++j) {
    EXPECT_EQ(std::memcmp(static_cast<const uint8_t*>(some->data) + j * m.row_bytes,
                          m.q4_0.data() + rows[j] * m.row_bytes, m.row_bytes),
              0)
        << "row " << rows[j];
  }
  EXPECT_EQ(device->used().attention, m.q4_0.size());
  EXPECT_EQ(device->used().ffn, 2 * m.row_bytes);
}

TEST(BackendUpload, TheHostKeepsTheMappedTensor) {
  const Matrices m = MakeMatrices();
  const cpu::MatrixView x16 = cpu::MakeMatrixView(DType::kQ4_0x16, kRows, kCols, m.q4_0x16.data());
  std::unique_ptr<CpuBackend> host = CpuBackend::Host();
  absl::StatusOr<BackendMatrix> all = host->UploadWeight(x16, {}, MemoryPart::kAttention);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->dtype, DType::kQ4_0x16);  // the CPU kernels read the reordering
  EXPECT_EQ(all->data, m.q4_0x16.data());
}

}  // namespace
}  // namespace pinfer
