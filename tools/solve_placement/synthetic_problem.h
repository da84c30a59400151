// Placement problems at real model shapes without the model files: a ModelConfig of the shape
// (bench/synth/shapes.h holds the named ones), bytes from the dtype, and a synthetic power-law
// activation profile. For tests and bench/place.
//
// Firing frequencies: in layer l, the neuron of rank r (0 = hottest) fires with probability
//   f(r) = min(1, c_l * (r + 1)^(-alpha_l)),
// with c_l chosen (bisection) so that the layer's mean density is d_l; d_l = density * (0.6 +
// 0.8 u) and alpha_l = alpha * (0.8 + 0.4 u') with u, u' uniform per layer from the seed. Ranks
// are assigned to neuron indices by a seeded permutation, and frequencies are rounded to counts
// over `tokens` observed tokens, as a profile would hold them. With alpha = 1 and density 0.1,
// about 38% of a 7B layer's neurons carry 80% of its activations (PowerInfer reports 26% for
// OPT-30B and 43% for ReLU-Llama-70B).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "format/dtype.h"
#include "runtime/model/model_config.h"
#include "tools/solve_placement/placement_problem.h"

namespace pinfer {

struct PowerLawProfile {
  double density = 0.1;
  double alpha = 1.0;
  int64_t tokens = 65536;
  uint64_t seed = 1;
};

// Frequencies [n_layers][n_ff] as described above.
std::vector<std::vector<float>> PowerLawFrequencies(int64_t n_layers, int64_t n_ff,
                                                    const PowerLawProfile& profile);

struct SyntheticOptions {
  DType dtype = DType::kQ4_0;  // every weight matrix (norms are f32)
  uint64_t budget_bytes = 0;
  int64_t context = 4096;
  int64_t batch = 512;
  int64_t group_size = 64;
  Objective objective = Objective::kCoverage;
  HardwareModel hardware;
  PowerLawProfile profile;
};

// The problem pi-place would pose for a model of this shape and dtype with a power-law profile. A
// neuron is its gate, up and down rows (gate and down for a gate-less FFN: OPT, Falcon).
absl::StatusOr<PlacementProblem> SyntheticProblem(const ModelConfig& config,
                                                  const SyntheticOptions& options);

}  // namespace pinfer
