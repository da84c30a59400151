// The observer behind pi-profile's statistics: per layer and neuron, how many tokens it fired on
// and the sum of |a_i|; optionally it hands every K-th token's (FFN input, fired mask) pairs to a
// sample file.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "format/sample_file.h"
#include "runtime/exec/forward_observer.h"
#include "runtime/model/activation_profile.h"
#include "runtime/model/firing_thresholds.h"
#include "runtime/model/model_config.h"

namespace pinfer {

class ActivationCounter : public ForwardObserver {
 public:
  // `samples` (not owned, may be null) receives the pairs of every `sample_every`-th token, the
  // tokens numbered from 0 in the order they are observed.
  ActivationCounter(const ModelConfig& config, FiringThresholds rule,
                    SampleFileWriter* samples = nullptr, int64_t sample_every = 1);

  void OnFfn(const FfnTrace& trace) override;

  // The first error of the sample writer (OnFfn cannot return one); later calls do nothing.
  const absl::Status& status() const { return status_; }
  int64_t tokens() const { return tokens_; }
  int64_t fire_count(int64_t layer, int64_t neuron) const {
    return fire_count_[static_cast<size_t>(layer * n_ff_ + neuron)];
  }
  double sum_abs(int64_t layer, int64_t neuron) const {
    return sum_abs_[static_cast<size_t>(layer * n_ff_ + neuron)];
  }

  // The counts as a profile (model digest, datasets and context are the caller's to fill in).
  // Fails when a count does not fit the profile's i32.
  absl::StatusOr<ActivationProfile> ToProfile() const;

 private:
  int64_t n_layers_, n_ff_, dim_;
  FiringThresholds rule_;
  SampleFileWriter* samples_;
  int64_t sample_every_;
  std::vector<int64_t> fire_count_;  // [n_layers, n_ff]
  std::vector<double> sum_abs_;      // [n_layers, n_ff]
  int64_t tokens_ = 0;               // tokens seen by layer 0
  int64_t batch_first_token_ = 0;    // number of the current batch's first token
  std::vector<uint8_t> mask_;
  absl::Status status_;
};

}  // namespace pinfer
