#include "runtime/model/firing_thresholds.h"

#include <cmath>

namespace pinfer {

bool FiringThresholds::Fires(int64_t layer, float gate, float activation_value) const {
  if (!calibrated()) return activation_value != 0.0f;
  return std::fabs(activation.Gate(gate)) > per_layer[static_cast<size_t>(layer)];
}

void FiringThresholds::Apply(int64_t layer, const float* gate, int64_t count, float* a) const {
  if (!calibrated()) return;
  const float tau = per_layer[static_cast<size_t>(layer)];
  for (int64_t j = 0; j < count; ++j) {
    if (!(std::fabs(activation.Gate(gate[j])) > tau)) a[j] = 0.0f;
  }
}

}  // namespace pinfer
