#include "runtime/exec/ffn_stats.h"

#include <algorithm>

namespace pinfer {

FfnStats& FfnStats::operator+=(const FfnStats& o) {
  calls += o.calls;
  dense_calls += o.dense_calls;
  tokens += o.tokens;
  selected += o.selected;
  computed += o.computed;
  max_selected = std::max(max_selected, o.max_selected);
  weight_bytes += o.weight_bytes;
  seconds += o.seconds;
  wait_seconds += o.wait_seconds;
  select_seconds += o.select_seconds;
  synchronisations += o.synchronisations;
  true_active += o.true_active;
  hits += o.hits;
  true_mass += o.true_mass;
  missed_mass += o.missed_mass;
  for (int kind = 0; kind < 2; ++kind) {
    for (int mode = 0; mode < 3; ++mode) mode_calls[kind][mode] += o.mode_calls[kind][mode];
  }
  return *this;
}

double FfnStats::SelectedDensity(int64_t neurons) const {
  return tokens > 0 ? static_cast<double>(selected) / (static_cast<double>(tokens) * neurons) : 0.0;
}
double FfnStats::TrueDensity(int64_t neurons) const {
  return tokens > 0 ? static_cast<double>(true_active) / (static_cast<double>(tokens) * neurons)
                    : 0.0;
}
double FfnStats::Recall() const {
  return true_active > 0 ? static_cast<double>(hits) / static_cast<double>(true_active) : 1.0;
}
double FfnStats::FalseNegativeMass() const {
  return true_mass > 0.0 ? missed_mass / true_mass : 0.0;
}

}  // namespace pinfer
