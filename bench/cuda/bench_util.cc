#include "bench/cuda/bench_util.h"

#include <algorithm>
#include <random>
#include <vector>

#include "format/quant.h"

namespace pinfer::cuda::bench {

absl::StatusOr<double> TimeMicros(Stream& stream, int warmup, int iterations,
                                  const std::function<absl::Status()>& op) {
  for (int i = 0; i < warmup; ++i) {
    if (absl::Status s = op(); !s.ok()) return s;
  }
  absl::StatusOr<Event> start = Event::Create(/*timing=*/true);
  if (!start.ok()) return start.status();
  absl::StatusOr<Event> end = Event::Create(/*timing=*/true);
  if (!end.ok()) return end.status();
  if (absl::Status s = start->Record(stream); !s.ok()) return s;
  for (int i = 0; i < iterations; ++i) {
    if (absl::Status s = op(); !s.ok()) return s;
  }
  if (absl::Status s = end->Record(stream); !s.ok()) return s;
  if (absl::Status s = end->Synchronize(); !s.ok()) return s;
  absl::StatusOr<float> ms = Event::ElapsedMilliseconds(*start, *end);
  if (!ms.ok()) return ms.status();
  return 1000.0 * *ms / iterations;
}

absl::StatusOr<DeviceWeights> RandomDeviceWeights(Stream& stream, DType dtype, int64_t rows,
                                                  int64_t cols, uint32_t seed, float scale) {
  absl::StatusOr<uint64_t> row_bytes = RowBytes(dtype, static_cast<uint64_t>(cols));
  if (!row_bytes.ok()) return row_bytes.status();
  const int64_t unique_rows = std::min<int64_t>(rows, 64);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> values(static_cast<size_t>(cols));
  std::vector<uint8_t> block(static_cast<size_t>(unique_rows) * *row_bytes);
  for (int64_t r = 0; r < unique_rows; ++r) {
    for (float& v : values) v = normal(rng);
    if (absl::Status s =
            EncodeRow(values.data(), values.size(), dtype, block.data() + r * *row_bytes);
        !s.ok()) {
      return s;
    }
  }
  DeviceWeights weights;
  absl::StatusOr<DeviceBuffer> storage = DeviceBuffer::Allocate(*row_bytes * rows);
  if (!storage.ok()) return storage.status();
  weights.storage = std::move(*storage);
  uint8_t* base = weights.storage.As<uint8_t>();
  if (absl::Status s = CopyToDevice(stream, base, block.data(), block.size()); !s.ok()) return s;
  // Fill the rest by doubling what is already there.
  size_t filled = block.size();
  while (filled < weights.storage.size()) {
    const size_t n = std::min(filled, weights.storage.size() - filled);
    if (absl::Status s = CopyOnDevice(stream, base + filled, base, n); !s.ok()) return s;
    filled += n;
  }
  if (absl::Status s = stream.Synchronize(); !s.ok()) return s;
  weights.matrix = MakeDeviceMatrix(dtype, rows, cols, base);
  return weights;
}

absl::StatusOr<DeviceBuffer> RandomDeviceVector(Stream& stream, int64_t n, uint32_t seed,
                                                float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> host(static_cast<size_t>(n));
  for (float& v : host) v = scale == 0.0f ? 1.0f : scale * normal(rng);
  absl::StatusOr<DeviceBuffer> buffer = DeviceBuffer::Allocate(host.size() * sizeof(float));
  if (!buffer.ok()) return buffer.status();
  if (absl::Status s = CopyToDevice(stream, buffer->data(), host.data(), buffer->size()); !s.ok()) {
    return s;
  }
  if (absl::Status s = stream.Synchronize(); !s.ok()) return s;
  return buffer;
}

}  // namespace pinfer::cuda::bench
