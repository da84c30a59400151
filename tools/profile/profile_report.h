// What pi-profile reports: per layer the density and how concentrated firing is, the run's
// throughput and the files written; as text for people and as JSON (--json) for scripts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "runtime/model/activation_profile.h"

namespace pinfer {

// The shares of all firings that the concentration columns report.
inline constexpr double kConcentrationShares[] = {0.8, 0.9, 0.99};

struct LayerStats {
  int64_t layer = 0;
  double density = 0.0;    // mean fraction of neurons firing per token
  float threshold = 0.0f;  // τ (0 for exact-zero models)
  // Smallest fraction of the layer's neurons (the most frequent first) that accounts for 80%, 90%
  // and 99% of its firings.
  double neurons_for_share[3] = {0, 0, 0};
  int64_t never_fired = 0;
  double max_frequency = 0.0;  // of the most frequent neuron
};

// The smallest fraction of neurons whose fire counts add up to `share` of the total (0 if none).
double NeuronFractionForShare(std::vector<int64_t> counts, double share);
LayerStats ComputeLayerStats(const ActivationProfile& profile, int64_t layer);

struct SampleSummary {
  std::string path;
  int64_t samples_per_layer = 0;
  int64_t frames = 0;
  uint64_t bytes = 0;
  std::string input_dtype;
  int64_t sample_every = 1;
};

struct ProfileReport {
  std::string model_path;
  std::string model_name;
  std::string activation;  // the model's FFN activation ("shifted_relu:0.25")
  int64_t n_layers = 0;
  int64_t n_ff = 0;
  std::vector<std::string> datasets;
  int64_t context = 0;
  int64_t tokens = 0;
  int64_t chunks = 0;
  double seconds = 0.0;            // evaluating the counted tokens (forward passes)
  double wall_seconds = 0.0;       // the whole run (tokenizing, calibrating, writing)
  double tokens_per_second = 0.0;  // tokens / seconds
  // Calibration (silu/gelu): target and measured sparsity.
  bool calibrated = false;
  double target_sparsity = -1.0;
  int64_t calibration_tokens = 0;
  double calibration_seconds = 0.0;
  std::string thresholds_from;  // the profile τ came from, when not calibrated here
  std::vector<LayerStats> layers;
  double mean_density = 0.0;
  std::string profile_path;
  std::string plot_path;
  bool has_samples = false;
  SampleSummary samples;

  std::string ToText() const;
  nlohmann::json ToJson() const;
};

// Fills the per-layer statistics and the mean density from a profile.
void FillLayerStats(const ActivationProfile& profile, ProfileReport& report);

}  // namespace pinfer
