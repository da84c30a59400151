#include "tools/profile/activation_counter.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"

namespace pinfer {

ActivationCounter::ActivationCounter(const ModelConfig& config, FiringThresholds rule,
                                     SampleFileWriter* samples, int64_t sample_every)
    : n_layers_(config.n_layers),
      n_ff_(config.n_ff),
      dim_(config.dim),
      rule_(std::move(rule)),
      samples_(samples),
      sample_every_(sample_every < 1 ? 1 : sample_every),
      fire_count_(static_cast<size_t>(config.n_layers * config.n_ff), 0),
      sum_abs_(static_cast<size_t>(config.n_layers * config.n_ff), 0.0),
      mask_(static_cast<size_t>(SampleMaskBytes(config.n_ff)), 0) {}

void ActivationCounter::OnFfn(const FfnTrace& trace) {
  const int64_t n = trace.n();
  const int64_t layer = trace.layer;
  if (layer == 0) {
    batch_first_token_ = tokens_;
    tokens_ += n;
  }
  int64_t* counts = fire_count_.data() + layer * n_ff_;
  double* sums = sum_abs_.data() + layer * n_ff_;
  for (int64_t t = 0; t < n; ++t) {
    const float* a = trace.activations + t * n_ff_;
    const float* g = trace.gate + t * n_ff_;
    for (int64_t i = 0; i < n_ff_; ++i) sums[i] += std::fabs(a[i]);
    const bool sampled =
        samples_ != nullptr && status_.ok() && (batch_first_token_ + t) % sample_every_ == 0;
    if (sampled) std::fill(mask_.begin(), mask_.end(), 0);
    if (!rule_.calibrated()) {
      for (int64_t i = 0; i < n_ff_; ++i) counts[i] += a[i] != 0.0f;
      if (sampled) {
        for (int64_t i = 0; i < n_ff_; ++i) {
          if (a[i] != 0.0f) SetMaskBit(mask_, i);
        }
      }
    } else {
      const float tau = rule_.per_layer[static_cast<size_t>(layer)];
      for (int64_t i = 0; i < n_ff_; ++i) {
        if (std::fabs(rule_.activation.Gate(g[i])) > tau) {
          ++counts[i];
          if (sampled) SetMaskBit(mask_, i);
        }
      }
    }
    if (sampled) {
      status_ = samples_->Add(
          layer, trace.tokens[static_cast<size_t>(t)],
          std::span<const float>(trace.input + t * dim_, static_cast<size_t>(dim_)), mask_);
    }
  }
}

absl::StatusOr<ActivationProfile> ActivationCounter::ToProfile() const {
  if (tokens_ > std::numeric_limits<int32_t>::max()) {
    return absl::OutOfRangeError(absl::StrCat(tokens_,
                                              " tokens do not fit the profile's 32-bit "
                                              "counts: use --max-tokens"));
  }
  ActivationProfile p;
  p.n_layers = n_layers_;
  p.n_ff = n_ff_;
  p.tokens = tokens_;
  p.fire_count.resize(fire_count_.size());
  p.mean_abs.resize(sum_abs_.size());
  for (size_t i = 0; i < fire_count_.size(); ++i) {
    p.fire_count[i] = static_cast<int32_t>(fire_count_[i]);
    p.mean_abs[i] = tokens_ > 0 ? static_cast<float>(sum_abs_[i] / tokens_) : 0.0f;
  }
  p.threshold = rule_.calibrated() ? rule_.per_layer
                                   : std::vector<float>(static_cast<size_t>(n_layers_), 0.0f);
  return p;
}

}  // namespace pinfer
