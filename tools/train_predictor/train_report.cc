#include "tools/train_predictor/train_report.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/common/cli_common.h"

namespace pinfer {

double TrainReport::MeanPredictedDensity() const {
  double sum = 0;
  for (const LayerTrainReport& l : layers) sum += l.predicted_density;
  return layers.empty() ? 0 : sum / static_cast<double>(layers.size());
}

double TrainReport::MeanTrueDensity() const {
  double sum = 0;
  for (const LayerTrainReport& l : layers) sum += l.true_density;
  return layers.empty() ? 0 : sum / static_cast<double>(layers.size());
}

double TrainReport::MeanRecall() const {
  double sum = 0;
  for (const LayerTrainReport& l : layers) sum += l.recall;
  return layers.empty() ? 0 : sum / static_cast<double>(layers.size());
}

std::string TrainReport::ToText() const {
  std::string out = absl::StrFormat(
      "predictor  %s\nmodel      %s (digest %s; dim %d, n_ff %d)\nsamples    %s\n"
      "training   rank %s, target recall %.4g, %d epochs, seed %d, %s weights, %s with %d "
      "threads (LibTorch %s)\n\n",
      output_path, model_path, model_digest, dim, n_ff, samples_path, rank_mode, target_recall,
      epochs, seed, dtype, device, threads, torch_version);
  absl::StrAppendFormat(&out, "%5s %5s %9s %8s %9s %9s %9s %8s %8s %10s %8s  %s\n", "layer", "rank",
                        "threshold", "recall", "precision", "predicted", "true", "ratio", "r@0.5",
                        "size", "time", "ranks tried (predicted density)");
  for (const LayerTrainReport& l : layers) {
    std::vector<std::string> tried;
    for (const RankTrial& t : l.trials) {
      tried.push_back(absl::StrFormat("%d:%.3f", t.rank, t.predicted_density));
    }
    absl::StrAppendFormat(
        &out, "%5d %5d %9.4f %8.4f %9.4f %9.4f %9.4f %8.2f %8.4f %10s %7.1fs  %s\n", l.layer,
        l.rank, l.threshold, l.recall, l.precision, l.predicted_density, l.true_density,
        l.true_density > 0 ? l.predicted_density / l.true_density : 0.0, l.recall_at_half,
        FormatBytes(l.bytes), l.seconds, absl::StrJoin(tried, " "));
  }
  absl::StrAppendFormat(&out,
                        "\nmean predicted density %.4f (true %.4f); predictor %s in all (%.2f%% of "
                        "the FFN weights); %.1f s\n",
                        MeanPredictedDensity(), MeanTrueDensity(), FormatBytes(total_bytes),
                        ffn_bytes_per_layer > 0 ? 100.0 * static_cast<double>(total_bytes) /
                                                      (static_cast<double>(ffn_bytes_per_layer) *
                                                       static_cast<double>(layers.size()))
                                                : 0.0,
                        seconds);
  if (powerinfer_compatible) {
    absl::StrAppendFormat(&out,
                          "PowerInfer-compatible (no biases, logit threshold 0 in every layer): "
                          "mean validation recall %.4f, %.4f below the target %.4g that a "
                          "per-layer threshold would hold\n",
                          MeanRecall(), std::max(0.0, target_recall - MeanRecall()), target_recall);
  }
  return out;
}

nlohmann::json TrainReport::ToJson() const {
  nlohmann::json j;
  j["predictor"] = output_path;
  j["model"] = model_path;
  j["samples"] = samples_path;
  j["model_digest"] = model_digest;
  j["dim"] = dim;
  j["n_ff"] = n_ff;
  j["dtype"] = dtype;
  j["device"] = device;
  j["threads"] = threads;
  j["torch_version"] = torch_version;
  j["rank"] = rank_mode;
  j["target_recall"] = target_recall;
  j["powerinfer_compatible"] = powerinfer_compatible;
  j["mean_recall"] = MeanRecall();
  j["epochs"] = epochs;
  j["seed"] = seed;
  j["bytes"] = total_bytes;
  j["ffn_bytes_per_layer"] = ffn_bytes_per_layer;
  j["seconds"] = seconds;
  j["mean_predicted_density"] = MeanPredictedDensity();
  j["mean_true_density"] = MeanTrueDensity();
  nlohmann::json layers_json = nlohmann::json::array();
  for (const LayerTrainReport& l : layers) {
    nlohmann::json t = nlohmann::json::array();
    for (const RankTrial& r : l.trials) {
      t.push_back({{"rank", r.rank},
                   {"recall_at_half", r.recall_at_half},
                   {"predicted_density", r.predicted_density},
                   {"expected_bytes", r.expected_bytes},
                   {"seconds", r.seconds}});
    }
    layers_json.push_back({{"layer", l.layer},
                           {"rank", l.rank},
                           {"threshold", l.threshold},
                           {"logit_threshold", l.logit_threshold},
                           {"recall", l.recall},
                           {"precision", l.precision},
                           {"predicted_density", l.predicted_density},
                           {"true_density", l.true_density},
                           {"recall_at_half", l.recall_at_half},
                           {"train_samples", l.train_samples},
                           {"validation_samples", l.validation_samples},
                           {"bytes", l.bytes},
                           {"seconds", l.seconds},
                           {"ranks_tried", t}});
  }
  j["layers"] = layers_json;
  return j;
}

}  // namespace pinfer
