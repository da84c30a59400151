#include "tools/solve_placement/calibrate.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <vector>

#include "absl/strings/str_format.h"
#include "format/dtype.h"
#include "format/quant.h"
#include "runtime/cpu/kernels.h"

namespace pinfer {
namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// Sums 64-bit words of [begin, end) rows; the result is kept so the reads are not optimised out.
uint64_t SumRows(const uint8_t* data, size_t row_bytes, const std::vector<int64_t>& rows) {
  uint64_t total = 0;
#pragma omp parallel for reduction(+ : total) schedule(static)
  for (int64_t i = 0; i < static_cast<int64_t>(rows.size()); ++i) {
    const uint64_t* p = reinterpret_cast<const uint64_t*>(data + rows[i] * row_bytes);
    uint64_t s = 0;
    for (size_t w = 0; w < row_bytes / 8; ++w) s += p[w];
    total += s;
  }
  return total;
}

}  // namespace

absl::StatusOr<CpuMeasurement> MeasureCpu(const CalibrateOptions& options) {
  if (options.threads > 0) cpu::SetThreads(options.threads);
  absl::StatusOr<uint64_t> row =
      RowBytes(DType::kQ4_0, static_cast<uint64_t>(options.row_elements));
  if (!row.ok()) return row.status();
  // Rows of whole 64-bit words keep SumRows simple; round the q4_0 row up.
  const size_t row_bytes = (*row + 7) / 8 * 8;
  const int64_t n_rows = static_cast<int64_t>(options.buffer_bytes / row_bytes);
  if (n_rows < 1024) {
    return absl::InvalidArgumentError("the calibration buffer is too small (at least 1024 rows)");
  }
  std::vector<uint8_t> buffer(static_cast<size_t>(n_rows) * row_bytes);
  std::mt19937_64 rng(1);
  // Touch every page with non-trivial data (in parallel, so pages spread over NUMA nodes).
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < n_rows; ++r) {
    std::memset(buffer.data() + r * row_bytes, static_cast<int>(r & 0x7f), row_bytes);
  }
  std::vector<int64_t> all_rows(static_cast<size_t>(n_rows));
  for (int64_t r = 0; r < n_rows; ++r) all_rows[static_cast<size_t>(r)] = r;
  std::vector<int64_t> some_rows;
  std::bernoulli_distribution pick(0.1);
  for (int64_t r = 0; r < n_rows; ++r) {
    if (pick(rng)) some_rows.push_back(r);
  }

  CpuMeasurement m;
  m.threads = omp_get_max_threads();
  volatile uint64_t sink = 0;
  for (int i = 0; i < options.repeats; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    sink = sink + SumRows(buffer.data(), row_bytes, all_rows);
    m.read_bandwidth = std::max(m.read_bandwidth, static_cast<double>(buffer.size()) / Seconds(t0));
    t0 = std::chrono::steady_clock::now();
    sink = sink + SumRows(buffer.data(), row_bytes, some_rows);
    m.scattered_bandwidth = std::max(
        m.scattered_bandwidth, static_cast<double>(some_rows.size() * row_bytes) / Seconds(t0));
  }

  // MatVec over a q4_0 matrix of at most 64 MiB (real blocks: random values quantized).
  const int64_t cols = options.row_elements;
  const int64_t mat_rows = std::min<int64_t>(n_rows, static_cast<int64_t>((64ull << 20) / *row));
  std::vector<uint8_t> matrix(static_cast<size_t>(mat_rows) * *row);
  std::vector<float> values(static_cast<size_t>(cols));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : values) v = normal(rng);
  for (int64_t r = 0; r < mat_rows; ++r) {
    QuantizeRowQ4_0(values.data(), reinterpret_cast<BlockQ4_0*>(matrix.data() + r * *row),
                    static_cast<size_t>(cols));
  }
  const cpu::MatrixView view = cpu::MakeMatrixView(DType::kQ4_0, mat_rows, cols, matrix.data());
  std::vector<float> y(static_cast<size_t>(mat_rows));
  for (int i = 0; i < options.repeats; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    cpu::MatVec(view, values.data(), y.data());
    m.matvec_bandwidth =
        std::max(m.matvec_bandwidth, static_cast<double>(matrix.size()) / Seconds(t0));
  }
  if (!(m.read_bandwidth > 0 && m.scattered_bandwidth > 0 && m.matvec_bandwidth > 0)) {
    return absl::InternalError("a calibration measurement took no time");
  }
  return m;
}

HardwareModel WithMeasuredCpu(const HardwareModel& base, const CpuMeasurement& m) {
  HardwareModel hw = base;
  hw.cpu_bandwidth = std::min(m.read_bandwidth, m.matvec_bandwidth);
  hw.cpu_sparse_bandwidth = std::min(m.scattered_bandwidth, m.matvec_bandwidth);
  hw.cpu_source = absl::StrFormat(
      "pi-place --calibrate, %d threads: read %.1f GB/s, scattered rows %.1f GB/s, q4_0 MatVec "
      "%.1f GB/s",
      m.threads, m.read_bandwidth / 1e9, m.scattered_bandwidth / 1e9, m.matvec_bandwidth / 1e9);
  return hw;
}

}  // namespace pinfer
