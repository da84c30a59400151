#include "tools/train_predictor/decision_threshold.h"

#include <cmath>

namespace pinfer {

int LogitHistogram::BinOf(float logit) {
  if (!(logit >= kMinLogit)) return -1;  // NaN counts as "below": never predicted
  if (logit >= kMaxLogit) return kBins;
  // Exact: logit - kMinLogit is exact in double and the scale is a power of two.
  return static_cast<int>(std::floor((static_cast<double>(logit) - kMinLogit) * kBinsPerUnit));
}

void LogitHistogram::Add(const float* logits, const uint8_t* mask, int64_t n_ff) {
  n_ff_ = n_ff;
  ++samples_;
  for (int64_t i = 0; i < n_ff; ++i) {
    const bool fired = (mask[i >> 3] >> (i & 7)) & 1;
    const int bin = BinOf(logits[i]);
    if (fired) {
      ++fired_total_;
      if (bin >= 0) ++fired_[static_cast<size_t>(bin)];
    } else {
      ++quiet_total_;
      if (bin >= 0) ++quiet_[static_cast<size_t>(bin)];
    }
  }
}

DecisionStats LogitHistogram::Stats(int edge_bin) const {
  int64_t fired_above = 0, quiet_above = 0;
  for (int b = edge_bin; b <= kBins; ++b) {
    fired_above += fired_[static_cast<size_t>(b)];
    quiet_above += quiet_[static_cast<size_t>(b)];
  }
  DecisionStats s;
  s.logit_threshold = Edge(edge_bin);
  const double pairs = static_cast<double>(samples_) * static_cast<double>(n_ff_);
  if (fired_total_ > 0) s.recall = static_cast<double>(fired_above) / fired_total_;
  if (fired_above + quiet_above > 0) {
    s.precision = static_cast<double>(fired_above) / (fired_above + quiet_above);
  }
  if (pairs > 0) {
    s.predicted_density = (fired_above + quiet_above) / pairs;
    s.true_density = fired_total_ / pairs;
  }
  return s;
}

DecisionStats LogitHistogram::At(float logit_threshold) const {
  int bin = BinOf(logit_threshold);
  if (bin < 0) bin = 0;
  return Stats(bin);
}

DecisionStats LogitHistogram::ForRecall(double target_recall) const {
  // Walk the edges from the top down, accumulating the fired count above each.
  const double needed = target_recall * static_cast<double>(fired_total_);
  int64_t fired_above = 0;
  for (int b = kBins - 1; b >= 0; --b) {
    fired_above += fired_[static_cast<size_t>(b)] + (b == kBins - 1 ? fired_[kBins] : 0);
    if (static_cast<double>(fired_above) >= needed) return Stats(b);
  }
  return Stats(0);
}

}  // namespace pinfer
