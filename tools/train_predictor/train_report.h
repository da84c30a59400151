// What pi-train-predictor reports: per layer the chosen rank and threshold, recall, precision,
// predicted against true density, the predictor's size and its training time; as text or JSON.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace pinfer {

// One rank tried for a layer (--rank auto tries several).
struct RankTrial {
  int64_t rank = 0;
  double recall_at_half = 0;     // validation recall at p >= 0.5, stored weights
  double predicted_density = 0;  // at the threshold chosen for the target recall
  double seconds = 0;
  // What a token costs the sparse path with this rank: the predictor's bytes and the gate, up and
  // down rows of the neurons it selects (--rank auto keeps the rank where it is lowest).
  double expected_bytes = 0;
};

struct LayerTrainReport {
  int64_t layer = 0;
  int64_t rank = 0;
  float threshold = 0;
  float logit_threshold = 0;
  double recall = 0;
  double precision = 0;
  double predicted_density = 0;
  double true_density = 0;
  double recall_at_half = 0;
  int64_t train_samples = 0;
  int64_t validation_samples = 0;
  uint64_t bytes = 0;  // weights and biases as stored
  double seconds = 0;  // training and evaluation of every rank tried
  std::vector<RankTrial> trials;
};

struct TrainReport {
  std::string model_path;
  std::string samples_path;
  std::string output_path;
  std::string model_digest;
  std::string dtype;
  std::string device;
  std::string torch_version;
  int threads = 0;
  std::string rank_mode;  // "auto" or the fixed rank
  double target_recall = 0;
  bool powerinfer_compatible = false;  // no biases, logit threshold 0: recall not held to target
  int64_t epochs = 0;
  uint64_t seed = 0;
  int64_t dim = 0;
  int64_t n_ff = 0;
  uint64_t ffn_bytes_per_layer = 0;  // the model's gate+up+down bytes of one layer
  std::vector<LayerTrainReport> layers;
  uint64_t total_bytes = 0;
  double seconds = 0;

  double MeanPredictedDensity() const;
  double MeanTrueDensity() const;
  double MeanRecall() const;
  std::string ToText() const;
  nlohmann::json ToJson() const;
};

}  // namespace pinfer
