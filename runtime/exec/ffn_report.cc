#include "runtime/exec/ffn_report.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "format/strings.h"

namespace pinfer {
namespace {

struct Summary {
  FfnStats total;            // every part of every layer, and the selectors
  FfnStats device;           // asynchronous parts (the GPU side)
  FfnStats host;             // synchronous parts (the CPU side)
  double dense_bytes = 0.0;  // what the dense FFN reads for the same calls
  int64_t first_layer_tokens = 0;
  std::string device_name = "none";
  std::string selector;     // empty: no part selects on the host
  std::string cost_source;  // of the first selecting part
  bool selects = false;
  bool check = false;
};

Summary Summarize(const Executor& executor) {
  Summary s;
  for (int64_t l = 0; l < executor.n_layers(); ++l) {
    const LayerFfn& layer = executor.ffn(l);
    const FfnStats layer_total = layer.Totals();
    s.total += layer_total;
    s.dense_bytes += static_cast<double>(executor.model().layer(l).FfnBytes()) *
                     static_cast<double>(layer.parts().empty() ? 0 : layer.parts()[0].stats.calls);
    if (l == 0) s.first_layer_tokens = layer_total.tokens;
    s.check = s.check || layer.check();
    if (layer.selector() != nullptr && s.selector.empty())
      s.selector = std::string(layer.selector()->name());
    for (const FfnPart& part : layer.parts()) {
      if (part.backend->asynchronous()) {
        s.device += part.stats;
        s.device_name = std::string(part.backend->device());
      } else {
        s.host += part.stats;
      }
      if (part.selection == Selection::kPredicted) {
        if (!s.selects && part.cost != nullptr) s.cost_source = part.cost->source;
        s.selects = true;
      }
      if (part.selection == Selection::kExact) {
        s.selects = true;
        s.selector = "exact gate-first";
      }
      if (part.selection == Selection::kAuto) {
        if (!s.selects && part.cost != nullptr) s.cost_source = part.cost->source;
        s.selects = true;
        s.selector = "auto";
      }
    }
    s.device.select_seconds += layer.selector_stats().select_seconds;
  }
  return s;
}

std::string CheckColumns(const FfnStats& s, int64_t n_ff) {
  return absl::StrFormat(
      "selected density %.3f, dense calls %lld/%lld, actual density %.3f, "
      "recall %.4f, false-negative mass %.4f",
      s.SelectedDensity(n_ff), static_cast<long long>(s.dense_calls),
      static_cast<long long>(s.calls), s.TrueDensity(n_ff), s.Recall(), s.FalseNegativeMass());
}

std::string LayerLine(const FfnLayerReport& r) {
  return absl::StrFormat(
      "ffn: layer %2d: decode %s; prompts %s; %.4f MB read per token (predictor %.4f MB), "
      "%.2f GB/s",
      static_cast<int>(r.layer), r.Modes(0), r.Modes(1), r.bytes_per_token / 1e6,
      r.predictor_bytes_per_token / 1e6, r.gbps);
}

}  // namespace

std::string FfnLayerReport::Modes(int kind) const {
  std::string out;
  int used = 0;
  int64_t total = 0;
  for (int m = 0; m < 3; ++m) {
    total += mode_calls[kind][m];
    used += mode_calls[kind][m] > 0;
  }
  if (total == 0) return "-";
  for (int m = 0; m < 3; ++m) {
    const int64_t calls = mode_calls[kind][m];
    if (calls == 0) continue;
    if (!out.empty()) out += ", ";
    out += AutoModeName(static_cast<AutoMode>(m));
    if (used > 1) absl::StrAppend(&out, " ", calls);
  }
  return out;
}

std::vector<FfnLayerReport> FfnLayerReports(const Executor& executor) {
  std::vector<FfnLayerReport> reports;
  for (int64_t l = 0; l < executor.n_layers(); ++l) {
    const LayerFfn& layer = executor.ffn(l);
    const FfnStats total = layer.Totals();
    FfnLayerReport r;
    r.layer = l;
    for (int kind = 0; kind < 2; ++kind) {
      for (int m = 0; m < 3; ++m) r.mode_calls[kind][m] = total.mode_calls[kind][m];
    }
    const double tokens = static_cast<double>(std::max<int64_t>(1, total.tokens));
    const double seconds = total.seconds + layer.selector_stats().select_seconds;
    r.bytes_per_token = static_cast<double>(total.weight_bytes) / tokens;
    r.predictor_bytes_per_token = static_cast<double>(layer.selector_stats().weight_bytes) / tokens;
    r.seconds_per_token = seconds / tokens;
    r.gbps = seconds > 0 ? static_cast<double>(total.weight_bytes) / seconds / 1e9 : 0.0;
    reports.push_back(r);
  }
  return reports;
}

const char* FfnMode(const Executor& executor) {
  const Summary s = Summarize(executor);
  if (s.device_name != "none") return "hybrid";
  return s.selects ? "sparse" : "dense";
}

std::vector<std::string> FfnReportLines(const Executor& executor) {
  const Summary s = Summarize(executor);
  const int64_t n_ff = executor.config().n_ff;
  const int64_t n_layers = std::max<int64_t>(1, executor.n_layers());
  std::vector<std::string> lines;
  const bool hybrid = s.device_name != "none";
  if (!s.selects && !hybrid) lines.push_back("ffn: dense");
  if (s.selects) {
    // Every token passes every layer once.
    const double tokens = static_cast<double>(std::max<int64_t>(1, s.total.tokens / n_layers));
    lines.push_back(absl::StrFormat(
        "ffn: %s (%s selection; cost model %s): mean selected density %.3f, %lld/%lld layer "
        "calls fell back to dense, FFN %.3f MB read per token (dense: %.3f MB)",
        hybrid ? "hybrid, sparse parts" : "sparse",
        s.selector.empty() ? "on-device predictor" : s.selector,
        s.cost_source.empty() ? "none" : s.cost_source, s.total.SelectedDensity(n_ff),
        static_cast<long long>(s.total.dense_calls), static_cast<long long>(s.total.calls),
        static_cast<double>(s.total.weight_bytes) / tokens / 1e6, s.dense_bytes / tokens / 1e6));
  }
  if (s.selects) {
    for (const FfnLayerReport& r : FfnLayerReports(executor)) lines.push_back(LayerLine(r));
  }
  if (hybrid) {
    const double tokens = static_cast<double>(std::max<int64_t>(1, s.first_layer_tokens));
    const int64_t computed = s.device.computed + s.host.computed;
    lines.push_back(absl::StrFormat(
        "hybrid FFN over %d tokens: GPU part (%s) %.3f ms/token, CPU part %.3f ms/token, waited "
        "%.3f ms/token in %d synchronisations, selector %.3f ms/token; hot coverage %.1f%% of %d "
        "computed neurons",
        s.first_layer_tokens, s.device_name, s.device.seconds * 1e3 / tokens,
        s.host.seconds * 1e3 / tokens, s.device.wait_seconds * 1e3 / tokens,
        s.device.synchronisations, s.device.select_seconds * 1e3 / tokens,
        computed > 0 ? 100.0 * static_cast<double>(s.device.computed) / computed : 0.0, computed));
  }
  if (s.check) {
    for (int64_t l = 0; l < executor.n_layers(); ++l) {
      lines.push_back(absl::StrFormat("check: layer %2d: %s", static_cast<int>(l),
                                      CheckColumns(executor.ffn(l).Totals(), n_ff)));
    }
    lines.push_back(absl::StrCat("check: all layers: ", CheckColumns(s.total, n_ff)));
  }
  return lines;
}

void ResetFfnStats(Executor& executor) {
  for (int64_t l = 0; l < executor.n_layers(); ++l) executor.ffn(l).ResetStats();
}

}  // namespace pinfer
