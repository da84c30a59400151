#include "tools/profile/profile_report.h"

#include <algorithm>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/common/cli_common.h"

namespace pinfer {

double NeuronFractionForShare(std::vector<int64_t> counts, double share) {
  if (counts.empty()) return 0.0;
  std::sort(counts.begin(), counts.end(), std::greater<int64_t>());
  double total = 0;
  for (int64_t c : counts) total += static_cast<double>(c);
  if (total <= 0) return 0.0;
  const double needed = share * total;
  double sum = 0;
  for (size_t k = 0; k < counts.size(); ++k) {
    sum += static_cast<double>(counts[k]);
    // A relative tolerance, so that a share of exactly 100% is reached despite rounding.
    if (sum >= needed * (1 - 1e-12)) return static_cast<double>(k + 1) / counts.size();
  }
  return 1.0;
}

LayerStats ComputeLayerStats(const ActivationProfile& profile, int64_t layer) {
  LayerStats s;
  s.layer = layer;
  s.density = profile.LayerDensity(layer);
  s.threshold = profile.threshold[static_cast<size_t>(layer)];
  std::vector<int64_t> counts(static_cast<size_t>(profile.n_ff));
  int32_t max_count = 0;
  for (int64_t i = 0; i < profile.n_ff; ++i) {
    const int32_t c = profile.fire_count[static_cast<size_t>(layer * profile.n_ff + i)];
    counts[static_cast<size_t>(i)] = c;
    s.never_fired += c == 0;
    max_count = std::max(max_count, c);
  }
  for (int k = 0; k < 3; ++k) {
    s.neurons_for_share[k] = NeuronFractionForShare(counts, kConcentrationShares[k]);
  }
  s.max_frequency = profile.tokens > 0 ? static_cast<double>(max_count) / profile.tokens : 0.0;
  return s;
}

void FillLayerStats(const ActivationProfile& profile, ProfileReport& report) {
  report.n_layers = profile.n_layers;
  report.n_ff = profile.n_ff;
  report.layers.clear();
  double sum = 0;
  for (int64_t l = 0; l < profile.n_layers; ++l) {
    report.layers.push_back(ComputeLayerStats(profile, l));
    sum += report.layers.back().density;
  }
  report.mean_density = profile.n_layers > 0 ? sum / profile.n_layers : 0.0;
}

std::string ProfileReport::ToText() const {
  std::string out;
  absl::StrAppend(&out, "model     ", model_path, (model_name.empty() ? "" : " ("), model_name,
                  (model_name.empty() ? "" : ")"), ": ", n_layers, " layers x ", n_ff,
                  " neurons, FFN ", activation,
                  calibrated ? " (no exact zeros: calibrated thresholds)" : " (exact zeros)", "\n");
  absl::StrAppend(&out, "dataset   ", absl::StrJoin(datasets, ", "), "\n");
  absl::StrAppend(
      &out, absl::StrFormat("profiled  %d tokens in %d chunks of up to %d, %.2f s of forward "
                            "passes: %.1f tokens/s (%.2f s wall)\n",
                            tokens, chunks, context, seconds, tokens_per_second, wall_seconds));
  if (!thresholds_from.empty()) {
    absl::StrAppend(&out, absl::StrFormat("thresholds from %s (calibrated for %.1f%% sparsity)\n",
                                          thresholds_from, target_sparsity * 100));
  } else if (calibrated) {
    absl::StrAppend(
        &out, absl::StrFormat("calibrated thresholds for %.1f%% sparsity on the first "
                              "%d tokens (%.2f s)\n",
                              target_sparsity * 100, calibration_tokens, calibration_seconds));
  }
  absl::StrAppend(&out, "\n");
  absl::StrAppend(&out, absl::StrFormat("%5s  %8s  %10s  %26s  %7s  %8s\n", "layer", "density",
                                        "tau", "neurons for 80%/90%/99%", "never", "max freq"));
  for (const LayerStats& s : layers) {
    absl::StrAppend(
        &out, absl::StrFormat("%5d  %7.2f%%  %10.4g  %7.2f%% %7.2f%% %7.2f%%  %7d  %7.2f%%\n",
                              s.layer, s.density * 100, s.threshold, s.neurons_for_share[0] * 100,
                              s.neurons_for_share[1] * 100, s.neurons_for_share[2] * 100,
                              s.never_fired, s.max_frequency * 100));
  }
  absl::StrAppend(&out, absl::StrFormat("%5s  %7.2f%%   (mean over layers; sparsity %.2f%%)\n",
                                        "all", mean_density * 100, (1 - mean_density) * 100));
  absl::StrAppend(&out, "\nwrote     ", profile_path, "\n          ", plot_path,
                  "  (sorted firing frequency per layer)\n");
  if (has_samples) {
    absl::StrAppend(
        &out, absl::StrFormat("          %s  (%d samples per layer from 1 in %d "
                              "tokens, %s inputs, %d frames, %s)\n",
                              samples.path, samples.samples_per_layer, samples.sample_every,
                              samples.input_dtype, samples.frames, FormatBytes(samples.bytes)));
  }
  return out;
}

nlohmann::json ProfileReport::ToJson() const {
  nlohmann::json j;
  j["model"] = model_path;
  j["model_name"] = model_name;
  j["activation"] = activation;
  j["n_layers"] = n_layers;
  j["n_ff"] = n_ff;
  j["datasets"] = datasets;
  j["context"] = context;
  j["tokens"] = tokens;
  j["chunks"] = chunks;
  j["seconds"] = seconds;
  j["wall_seconds"] = wall_seconds;
  j["tokens_per_second"] = tokens_per_second;
  j["calibrated"] = calibrated;
  if (calibrated) {
    j["target_sparsity"] = target_sparsity;
    j["calibration_tokens"] = calibration_tokens;
    j["calibration_seconds"] = calibration_seconds;
    if (!thresholds_from.empty()) j["thresholds_from"] = thresholds_from;
  }
  j["mean_density"] = mean_density;
  nlohmann::json layer_array = nlohmann::json::array();
  for (const LayerStats& s : layers) {
    layer_array.push_back({{"layer", s.layer},
                           {"density", s.density},
                           {"threshold", s.threshold},
                           {"neurons_for_80", s.neurons_for_share[0]},
                           {"neurons_for_90", s.neurons_for_share[1]},
                           {"neurons_for_99", s.neurons_for_share[2]},
                           {"never_fired", s.never_fired},
                           {"max_frequency", s.max_frequency}});
  }
  j["layers"] = std::move(layer_array);
  j["profile"] = profile_path;
  j["plot"] = plot_path;
  if (has_samples) {
    j["samples"] = {{"path", samples.path},
                    {"samples_per_layer", samples.samples_per_layer},
                    {"frames", samples.frames},
                    {"bytes", samples.bytes},
                    {"input_dtype", samples.input_dtype},
                    {"sample_every", samples.sample_every}};
  }
  return j;
}

}  // namespace pinfer
