#include "tools/profile/threshold_calibrator.h"

#include <algorithm>
#include <cmath>

namespace pinfer {

ThresholdCalibrator::ThresholdCalibrator(int64_t n_layers, Activation activation, int64_t capacity,
                                         uint64_t seed)
    : activation_(activation),
      capacity_(std::max<int64_t>(1, capacity)),
      layers_(static_cast<size_t>(n_layers)),
      rng_(seed) {}

int64_t ThresholdCalibrator::DefaultCapacity(int64_t n_layers) {
  return std::clamp<int64_t>((int64_t{1} << 25) / std::max<int64_t>(1, n_layers), int64_t{1} << 16,
                             int64_t{1} << 22);
}

void ThresholdCalibrator::Advance(Reservoir& r) {
  // Values to skip before the next one kept: geometric with success probability w.
  const double u = 1.0 - Uniform();  // (0, 1]
  const double skip = std::floor(std::log(u) / std::log1p(-r.w));
  r.next = r.seen + static_cast<int64_t>(std::min(skip, 4e18));
}

void ThresholdCalibrator::OnFfn(const FfnTrace& trace) {
  Reservoir& r = layers_[static_cast<size_t>(trace.layer)];
  const int64_t count = trace.n() * trace.n_ff;
  const double k = static_cast<double>(capacity_);
  int64_t i = 0;
  // Fill the reservoir with the first values.
  while (i < count && static_cast<int64_t>(r.values.size()) < capacity_) {
    r.values.push_back(std::fabs(activation_.Gate(trace.gate[i])));
    ++i;
    ++r.seen;
    if (static_cast<int64_t>(r.values.size()) == capacity_) {
      r.w = std::exp(std::log(1.0 - Uniform()) / k);
      Advance(r);
    }
  }
  // Then jump from one kept value to the next (only those need the activation computed).
  const int64_t batch_start = r.seen - i;  // index of this batch's first value among all seen
  while (i < count) {
    const int64_t target = r.next - batch_start;
    if (target >= count) break;
    i = target;
    const size_t slot = std::uniform_int_distribution<size_t>(0, r.values.size() - 1)(rng_);
    r.values[slot] = std::fabs(activation_.Gate(trace.gate[i]));
    ++i;
    r.seen = batch_start + i;
    r.w *= std::exp(std::log(1.0 - Uniform()) / k);
    Advance(r);
  }
  r.seen = batch_start + count;
}

std::vector<float> ThresholdCalibrator::Thresholds(double target_sparsity) const {
  std::vector<float> thresholds;
  thresholds.reserve(layers_.size());
  for (const Reservoir& r : layers_) {
    std::vector<float> values = r.values;
    const int64_t k = std::llround(target_sparsity * static_cast<double>(values.size()));
    if (k <= 0 || values.empty()) {
      thresholds.push_back(0.0f);
      continue;
    }
    const auto kth = values.begin() + (std::min<int64_t>(k, values.size()) - 1);
    std::nth_element(values.begin(), kth, values.end());
    thresholds.push_back(*kth);
  }
  return thresholds;
}

}  // namespace pinfer
