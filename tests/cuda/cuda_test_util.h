// Shared helpers of the CUDA tests: a fixture that skips without a device, host <-> device copies,
// random weight matrices in every dtype, and a tolerance check against the CPU references.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "format/dtype.h"
#include "format/quant.h"
#include "gtest/gtest.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cuda/buffers.h"
#include "runtime/cuda/device.h"
#include "runtime/cuda/kernels.h"
#include "runtime/cuda/stream.h"

namespace pinfer::cuda::testing {

#define PINFER_ASSERT_OK(expr)            \
  do {                                    \
    const absl::Status _status = (expr);  \
    ASSERT_TRUE(_status.ok()) << _status; \
  } while (false)

inline constexpr DType kWeightDTypes[] = {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0,
                                          DType::kQ4_0};

inline bool IsQuantized(DType dtype) { return dtype == DType::kQ8_0 || dtype == DType::kQ4_0; }

inline std::vector<float> RandomVector(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

// A weight matrix encoded on the host exactly as a .pi tensor holds it.
struct HostMatrix {
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<uint8_t> bytes;

  cpu::MatrixView View() const { return cpu::MakeMatrixView(dtype, rows, cols, bytes.data()); }
  size_t row_bytes() const { return View().row_bytes; }
};

inline HostMatrix RandomMatrix(DType dtype, int64_t rows, int64_t cols, uint32_t seed,
                               float scale = 1.0f) {
  HostMatrix m{dtype, rows, cols, {}};
  const size_t row_bytes = *RowBytes(dtype, static_cast<uint64_t>(cols));
  m.bytes.resize(row_bytes * static_cast<size_t>(rows));
  const std::vector<float> values = RandomVector(static_cast<size_t>(rows * cols), seed, scale);
  for (int64_t r = 0; r < rows; ++r) {
    const absl::Status s = EncodeRow(values.data() + r * cols, static_cast<size_t>(cols), dtype,
                                     m.bytes.data() + r * row_bytes);
    EXPECT_TRUE(s.ok()) << s;
  }
  return m;
}

// Relative error check: max |got - want| <= tolerance * rms(want) (+ a tiny absolute floor), with
// the worst element named on failure.
inline void ExpectClose(const std::vector<float>& got, const std::vector<float>& want,
                        double tolerance, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double sum_sq = 0.0;
  for (float w : want) sum_sq += static_cast<double>(w) * w;
  const double rms = want.empty() ? 0.0 : std::sqrt(sum_sq / static_cast<double>(want.size()));
  const double limit = tolerance * rms + 1e-6;
  double worst = 0.0;
  size_t worst_index = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double error = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (!(error <= worst) || std::isnan(got[i])) {
      worst = std::isnan(got[i]) ? INFINITY : error;
      worst_index = i;
    }
  }
  EXPECT_LE(worst, limit) << what << ": element " << worst_index << " is " << got[worst_index]
                          << ", want " << want[worst_index] << " (rms " << rms
                          << ", relative tolerance " << tolerance << ")";
}

// Skips the test unless a CUDA device is usable; provides a stream and copy helpers that
// synchronise, so that tests read like their CPU counterparts.
class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (absl::Status s = CheckDeviceAvailable(); !s.ok()) {
      GTEST_SKIP() << "no CUDA device available: " << s.message();
    }
    absl::StatusOr<Stream> stream = Stream::Create();
    ASSERT_TRUE(stream.ok()) << stream.status();
    stream_.emplace(std::move(*stream));
  }

  void TearDown() override {
    if (stream_.has_value()) {
      const absl::Status s = stream_->Synchronize();
      EXPECT_TRUE(s.ok()) << s;
    }
  }

  Stream& stream() { return *stream_; }

  DeviceBuffer Allocate(size_t bytes) {
    absl::StatusOr<DeviceBuffer> buffer = DeviceBuffer::Allocate(bytes);
    EXPECT_TRUE(buffer.ok()) << buffer.status();
    return buffer.ok() ? std::move(*buffer) : DeviceBuffer();
  }

  template <typename T>
  DeviceBuffer ToDevice(const std::vector<T>& host) {
    DeviceBuffer buffer = Allocate(host.size() * sizeof(T));
    const absl::Status s =
        CopyToDevice(stream(), buffer.data(), host.data(), host.size() * sizeof(T));
    EXPECT_TRUE(s.ok()) << s;
    return buffer;
  }

  template <typename T>
  std::vector<T> ToHost(const void* device, size_t count) {
    std::vector<T> host(count);
    absl::Status s = CopyToHost(stream(), host.data(), device, count * sizeof(T));
    if (s.ok()) s = stream().Synchronize();
    EXPECT_TRUE(s.ok()) << s;
    return host;
  }

  // The matrix's bytes on the device; `storage` keeps them alive.
  DeviceMatrix ToDevice(const HostMatrix& m, DeviceBuffer& storage) {
    storage = ToDevice(m.bytes);
    return MakeDeviceMatrix(m.dtype, m.rows, m.cols, storage.data());
  }

 private:
  std::optional<Stream> stream_;
};

}  // namespace pinfer::cuda::testing
