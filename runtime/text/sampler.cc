#include "runtime/text/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace pinfer {

absl::Status SamplerParams::Validate() const {
  if (!std::isfinite(temperature))
    return absl::InvalidArgumentError("--temp must be a finite number");
  if (!(top_p >= 0.0f && top_p <= 1.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("--top-p must be in [0, 1], got ", top_p));
  }
  if (!(min_p >= 0.0f && min_p <= 1.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("--min-p must be in [0, 1], got ", min_p));
  }
  if (!(repeat_penalty > 0.0f) || !std::isfinite(repeat_penalty)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--repeat-penalty must be a positive number, got ", repeat_penalty));
  }
  if (top_k < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--top-k must be 0 (off) or more, got ", top_k));
  }
  if (repeat_last_n < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--repeat-last-n must be 0 or more, got ", repeat_last_n));
  }
  return absl::OkStatus();
}

Sampler::Sampler(const SamplerParams& params) : params_(params), rng_(params.seed) {}

void Sampler::Reset() {
  rng_.seed(params_.seed);
  recent_.clear();
}

void Sampler::Accept(int32_t token) {
  if (params_.repeat_last_n == 0) return;
  recent_.push_back(token);
  while (static_cast<int32_t>(recent_.size()) > params_.repeat_last_n) recent_.pop_front();
}

double Sampler::NextUniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

int32_t Sampler::Sample(std::span<const float> logits) {
  if (logits.empty()) return -1;
  candidates_.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    candidates_[i] = {static_cast<int32_t>(i), logits[i]};
  }
  if (params_.repeat_penalty != 1.0f && !recent_.empty()) {
    const absl::flat_hash_set<int32_t> seen(recent_.begin(), recent_.end());
    for (int32_t token : seen) {
      if (token < 0 || static_cast<size_t>(token) >= candidates_.size()) continue;
      float& logit = candidates_[static_cast<size_t>(token)].logit;
      logit = logit <= 0.0f ? logit * params_.repeat_penalty : logit / params_.repeat_penalty;
    }
  }
  if (params_.temperature <= 0.0f) {
    size_t best = 0;
    for (size_t i = 1; i < candidates_.size(); ++i) {
      if (candidates_[i].logit > candidates_[best].logit) best = i;
    }
    return candidates_[best].token;
  }

  // Sorted by logit, largest first; equal logits by token id so that draws are reproducible.
  auto larger = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.token < b.token);
  };
  size_t keep = candidates_.size();
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < keep) {
    keep = static_cast<size_t>(params_.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + keep, candidates_.end(), larger);
  } else {
    std::sort(candidates_.begin(), candidates_.end(), larger);
  }
  candidates_.resize(keep);

  // Probabilities of the kept candidates at temperature 1 (top-p and min-p look at those).
  auto softmax = [&](float temperature) {
    probabilities_.resize(candidates_.size());
    const double max = candidates_.front().logit;
    double sum = 0.0;
    for (size_t i = 0; i < candidates_.size(); ++i) {
      probabilities_[i] = std::exp((candidates_[i].logit - max) / temperature);
      sum += probabilities_[i];
    }
    for (double& p : probabilities_) p /= sum;
  };
  if (params_.top_p < 1.0f) {
    softmax(1.0f);
    double cumulative = 0.0;
    for (size_t i = 0; i < candidates_.size(); ++i) {
      cumulative += probabilities_[i];
      if (cumulative >= params_.top_p) {
        candidates_.resize(i + 1);
        break;
      }
    }
  }
  if (params_.min_p > 0.0f) {
    const float min_logit = candidates_.front().logit + std::log(params_.min_p);
    size_t i = 1;  // the most likely token always stays
    while (i < candidates_.size() && candidates_[i].logit >= min_logit) ++i;
    candidates_.resize(i);
  }

  softmax(params_.temperature);
  const double u = NextUniform();
  double cumulative = 0.0;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    cumulative += probabilities_[i];
    if (u < cumulative) return candidates_[i].token;
  }
  return candidates_.back().token;  // u rounded past the last cumulative sum
}

}  // namespace pinfer
