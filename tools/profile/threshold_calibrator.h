// CATS/TEAL-style calibration of per-layer thresholds for models without exact zeros (silu, gelu):
// τ_l is chosen so that a fraction S of the values |act(gate_i·x)| of layer l (over every neuron
// and every calibration token) is at most τ_l; neurons above it "fire".
//
// Memory is bounded: each layer keeps a uniform random sample (reservoir, Li's algorithm L) of at
// most `capacity` values; τ is the exact quantile of that sample, and of all values when there
// were no more than `capacity` of them. With 2^18 values the quantile's standard error is below
// 0.001 (sqrt(S(1 - S)/capacity)).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "runtime/exec/forward_observer.h"
#include "runtime/model/activation.h"

namespace pinfer {

class ThresholdCalibrator : public ForwardObserver {
 public:
  ThresholdCalibrator(int64_t n_layers, Activation activation, int64_t capacity, uint64_t seed = 0);

  void OnFfn(const FfnTrace& trace) override;

  // τ per layer: the k-th smallest kept value with k = round(S · kept), so that a fraction S of
  // the values is at most τ (0 when k = 0: only exact zeros stay below).
  std::vector<float> Thresholds(double target_sparsity) const;

  int64_t values_seen(int64_t layer) const { return layers_[static_cast<size_t>(layer)].seen; }
  int64_t values_kept(int64_t layer) const {
    return static_cast<int64_t>(layers_[static_cast<size_t>(layer)].values.size());
  }
  // Reservoir size for a model: 2^25 values over all layers, between 2^16 and 2^22 per layer.
  static int64_t DefaultCapacity(int64_t n_layers);

 private:
  struct Reservoir {
    std::vector<float> values;
    int64_t seen = 0;
    int64_t next = 0;  // the index (among all values seen) of the next value to keep
    double w = 0.0;    // algorithm L's running weight
  };
  void Offer(Reservoir& r, float value);
  double Uniform() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }
  void Advance(Reservoir& r);

  Activation activation_;
  int64_t capacity_;
  std::vector<Reservoir> layers_;
  std::mt19937_64 rng_;
};

}  // namespace pinfer
