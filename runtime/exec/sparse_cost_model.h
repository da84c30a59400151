// When the sparse FFN is worth it: the density (fraction of a layer's neurons computed) below
// which the gathered kernels beat the dense ones. It is MEASURED on the model's own weights at
// load (MeasureSparseCostModel: a few timed passes of both kernel sets over real layers, one
// token), not guessed: the crossover depends on the dtype (q4_0 rows are short and their gathers
// pay more per byte than f16 rows), the row length, the cache sizes and the thread count.
//
// The sparse time is modelled as linear in the density, t_s(ρ) = c0 + c1·ρ, from two measured
// densities; the crossover is the ρ where t_s(ρ) equals the dense time. Batches (n > 1) compare
// the density of their union with the same crossover: the gathered kernels reuse the dense ones'
// register tiles, so their per-row cost relative to the dense kernels is close to decode's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/model/model.h"

namespace pinfer {

struct CrossoverMeasurement {
  double dense_seconds = 0.0;  // gate + up + down over every neuron, one token
  double low_density = 0.0;    // the two densities timed with the gathered kernels
  double low_seconds = 0.0;
  double high_density = 0.0;
  double high_seconds = 0.0;
  double crossover = 0.0;  // in [0, 1]
};

struct SparseCostModel {
  // Per layer: the call runs sparse when its density is below crossover[layer].
  std::vector<double> crossover;
  // How the crossovers were obtained (one line, for the log).
  std::string source;
  std::vector<CrossoverMeasurement> measurements;  // what MeasureSparseCostModel timed

  bool UseSparse(int64_t layer, double density) const {
    return density < crossover[static_cast<size_t>(layer)];
  }
  // The same crossover for every layer (tests, --sparse-crossover).
  static SparseCostModel Fixed(int64_t n_layers, double crossover);
};

// The density where t_s(ρ) = dense, from the two measured points, clamped to [0, 1].
double CrossoverDensity(const CrossoverMeasurement& m);

// Times the kernels on the model's layers (one measurement per distinct FFN weight signature:
// dtypes and shapes; rotating over layers so that a rep does not find the previous one's rows in
// cache), with the current thread count. Takes about 10 dense FFN passes.
absl::StatusOr<SparseCostModel> MeasureSparseCostModel(const Model& model);

}  // namespace pinfer
