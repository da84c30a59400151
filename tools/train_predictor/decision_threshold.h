// Choosing a layer's decision threshold on validation logits, and the numbers it gives.
//
// The logits of fired and not-fired (sample, neuron) pairs are counted in a histogram over
// [kMinLogit, kMaxLogit) with bins of 1/256: memory is fixed whatever the number of samples, and
// the counts at a bin edge are exact (an edge is a float, and a logit falls at or above it exactly
// when the runtime's test z >= edge holds), so the recall reported for the chosen edge is the
// recall the runtime gets with it on the same logits.
#pragma once

#include <cstdint>
#include <vector>

namespace pinfer {

struct DecisionStats {
  float logit_threshold = 0;
  double recall = 1;     // fired and predicted / fired (1 when nothing fired)
  double precision = 1;  // fired and predicted / predicted (1 when nothing is predicted)
  double predicted_density = 0;
  double true_density = 0;
};

class LogitHistogram {
 public:
  static constexpr float kMinLogit = -16.0f;
  static constexpr float kMaxLogit = 16.0f;
  static constexpr int kBinsPerUnit = 256;
  static constexpr int kBins = static_cast<int>((kMaxLogit - kMinLogit) * kBinsPerUnit);

  LogitHistogram() : fired_(kBins + 1, 0), quiet_(kBins + 1, 0) {}

  // One sample: n_ff logits and its fired bit mask (format/sample_file.h layout).
  void Add(const float* logits, const uint8_t* mask, int64_t n_ff);

  // The numbers for the decision z >= logit_threshold, which must be a bin edge.
  DecisionStats At(float logit_threshold) const;
  // The highest bin edge whose recall is at least `target_recall` (the most precise such one).
  DecisionStats ForRecall(double target_recall) const;

  int64_t samples() const { return samples_; }

 private:
  static float Edge(int bin) { return kMinLogit + static_cast<float>(bin) / kBinsPerUnit; }
  static int BinOf(float logit);  // -1 below the range
  DecisionStats Stats(int edge_bin) const;

  // Index b counts logits in [Edge(b), Edge(b + 1)); index kBins those at or above kMaxLogit.
  // Logits below kMinLogit are only counted in the totals.
  std::vector<int64_t> fired_, quiet_;
  int64_t fired_total_ = 0, quiet_total_ = 0, samples_ = 0, n_ff_ = 0;
};

}  // namespace pinfer
