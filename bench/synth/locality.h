// The activation locality pi-synth plants: how often each FFN neuron fires.
//
// Neurons are ranked by firing probability; rank k of n sits at r = (k + 1/2) / n and fires with
//   p(r) = p_hot                  for r < hot        (the hot set)
//   p(r) = p_hot · (r / hot)^-α   for r >= hot       (a power-law tail)
// p_hot is solved so that the mean of p over all n neurons is the configured density. Each layer
// scatters the ranks over neuron indices with its own seeded permutation, as in a real model where
// hot neurons sit anywhere. bench/synth/README.md has the derivation.
//
// Which neurons fire together: with latent=K > 0, every gate row of a layer reads the FFN input
// through the same K latent directions of the layer (plus a share `noise` of a direction of its
// own), so that the active set is a function of K numbers per token, which a rank-2K predictor
// can learn; latent=0 (the default) gives every neuron an independent random direction (a set no
// low-rank predictor learns). The frequencies above hold either way (README.md).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace pinfer::synth {

// No neuron may be planted to fire more often than this: the threshold construction needs a finite
// normal quantile, and "always" is not a locality worth planting.
inline constexpr double kMaxFiringProbability = 0.999;

struct LocalitySpec {
  double alpha = 1.5;     // exponent of the tail
  double hot = 0.04;      // fraction of neurons in the hot set
  double density = 0.10;  // mean firing probability
  int64_t latent = 0;     // K: latent directions per layer the gates read; 0: none
  double noise = 0.0;     // η: share of a gate's content variance outside the latent directions

  // "power-law:alpha=1.5,hot=0.04,density=0.1" (and ",latent=K,noise=η" when latent > 0)
  std::string ToString() const;
};

// Parses "power-law:alpha=A,hot=H,density=D[,latent=K][,noise=N]" (keys in any order; a missing
// key keeps its default). Errors name the flag, the text and the reason.
absl::StatusOr<LocalitySpec> ParseLocality(std::string_view text);

class FiringLaw {
 public:
  // Fails when no p_hot <= kMaxFiringProbability reaches the density with this alpha and hot.
  static absl::StatusOr<FiringLaw> Solve(const LocalitySpec& spec, int64_t n_ff);

  const LocalitySpec& spec() const { return spec_; }
  int64_t n_ff() const { return n_ff_; }
  double hot_probability() const { return hot_probability_; }
  // Firing probability of the neuron of rank `rank` (0 = most frequent).
  double Probability(int64_t rank) const;
  // Neurons of rank < HotCount() form the hot set.
  int64_t HotCount() const;
  // The probabilities over neuron indices of one layer: rank k goes to neuron permutation[k].
  std::vector<double> LayerProbabilities(uint64_t seed, int64_t layer) const;

 private:
  // Probability / p_hot: 1 inside the hot set, the power law outside.
  double Shape(int64_t rank) const;

  LocalitySpec spec_;
  int64_t n_ff_ = 0;
  double hot_probability_ = 0;
};

}  // namespace pinfer::synth
