#include "tools/solve_placement/placement_report.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "runtime/common/cli_common.h"

namespace pinfer {
namespace {

using json = nlohmann::json;

std::string Percent(double fraction) { return absl::StrFormat("%.2f %%", fraction * 100); }
std::string Ms(double seconds) { return absl::StrFormat("%.3f ms", seconds * 1e3); }

json FiguresJson(const PlacementFigures& f) {
  return {{"coverage", f.coverage},
          {"latency_ms", f.latency_s * 1e3},
          {"gpu_ms", f.gpu_s * 1e3},
          {"cpu_ms", f.cpu_s * 1e3},
          {"sync_ms", f.sync_s * 1e3},
          {"split_layers", f.split_layers},
          {"bytes",
           {{"workspace", f.bytes.workspace},
            {"norms", f.bytes.norms},
            {"attention", f.bytes.attention},
            {"kv", f.bytes.kv},
            {"ffn", f.bytes.ffn},
            {"predictor", f.bytes.predictor},
            {"output", f.bytes.output},
            {"total", f.bytes.total()}}}};
}

}  // namespace

std::string FormatPlacementReport(const ModelProblem& model, const PlacementResult& result) {
  const PlacementProblem& p = model.problem;
  const PlacementFigures& f = result.figures;
  const PlacementFigures& g = result.greedy_figures;
  const bool solved = result.mip.columns > 0;
  std::string out = absl::StrFormat(
      "model %s: %d layers x %d neurons (%s), profile of %d tokens, digest %s\n"
      "budget %s, context %d, batch %d, group %d, objective %s\n"
      "hardware %s: GPU %.0f GB/s, CPU %.1f GB/s dense / %.1f GB/s sparse (%s), sync %.1f us\n"
      "predictor %s\n\n",
      model.config.name.empty() ? "(unnamed)" : model.config.name, model.config.n_layers,
      model.config.n_ff, model.weight_dtype, model.profile_tokens, model.model_digest,
      FormatBytes(p.budget_bytes), model.context, model.batch, p.group_size,
      ObjectiveName(p.objective), p.hardware.name, p.hardware.gpu_bandwidth / 1e9,
      p.hardware.cpu_bandwidth / 1e9, p.hardware.cpu_sparse_bandwidth / 1e9, p.hardware.cpu_source,
      p.hardware.SyncSeconds(p.dim) * 1e6, model.predictor_source);
  absl::StrAppendFormat(&out, "%-22s %-22s %-22s\n", "", "placement", "greedy baseline");
  absl::StrAppendFormat(&out, "%-22s %-22s %-22s\n", "solver", result.solver, "greedy");
  absl::StrAppendFormat(
      &out, "%-22s %-22s %-22s\n", "solve time",
      solved ? absl::StrFormat("%.3f s (%d nodes)", result.mip.seconds, result.mip.nodes)
             : std::string("-"),
      absl::StrFormat("%.3f s", result.greedy_seconds));
  absl::StrAppendFormat(
      &out, "%-22s %-22s %-22s\n", "optimality gap",
      solved ? absl::StrFormat("%.4f %%", result.mip.gap * 100) : std::string("-"), "-");
  absl::StrAppendFormat(&out, "%-22s %-22s %-22s\n", "FFN coverage", Percent(f.coverage),
                        Percent(g.coverage));
  absl::StrAppendFormat(&out, "%-22s %-22s %-22s\n", "est. latency / token", Ms(f.latency_s),
                        Ms(g.latency_s));
  absl::StrAppendFormat(&out, "%-22s %-22s %-22s\n", "  GPU / CPU busy",
                        absl::StrCat(Ms(f.gpu_s), " / ", Ms(f.cpu_s)),
                        absl::StrCat(Ms(g.gpu_s), " / ", Ms(g.cpu_s)));
  absl::StrAppendFormat(&out, "%-22s %-22s %-22s\n", "  sync (split layers)",
                        absl::StrFormat("%s (%d)", Ms(f.sync_s), f.split_layers),
                        absl::StrFormat("%s (%d)", Ms(g.sync_s), g.split_layers));
  absl::StrAppendFormat(&out, "%-22s %-22s %-22s\n", "GPU bytes", FormatBytes(f.bytes.total()),
                        FormatBytes(g.bytes.total()));
  const std::pair<const char*, uint64_t PlanBytes::*> parts[] = {
      {"workspace", &PlanBytes::workspace}, {"norms", &PlanBytes::norms},
      {"attention", &PlanBytes::attention}, {"kv cache", &PlanBytes::kv},
      {"ffn neurons", &PlanBytes::ffn},     {"predictors", &PlanBytes::predictor},
      {"output", &PlanBytes::output}};
  for (const auto& [name, field] : parts) {
    absl::StrAppendFormat(&out, "  %-20s %-22s %-22s\n", name, FormatBytes(f.bytes.*field),
                          FormatBytes(g.bytes.*field));
  }
  absl::StrAppendFormat(&out, "\n%-6s %-16s %-10s %-9s %-10s %-10s\n", "layer", "GPU neurons",
                        "min share", "coverage", "attention", "predictor");
  for (size_t l = 0; l < p.layers.size(); ++l) {
    const size_t hot = result.placement.gpu_neurons[l].size();
    absl::StrAppendFormat(&out, "%-6d %-16s %-10d %-9s %-10s %-10s\n", l,
                          absl::StrFormat("%d / %d", hot, p.layers[l].n_ff()),
                          result.groups[l].NeuronsInFirst(result.groups[l].min_share_groups),
                          absl::StrFormat("%.1f%%", f.layer_coverage[l] * 100),
                          result.placement.attention_on_gpu[l] ? "gpu" : "cpu",
                          hot > 0 ? "gpu" : "cpu");
  }
  absl::StrAppendFormat(&out, "output (%s): %s\n", model.output_tensor,
                        result.placement.output_on_gpu ? "gpu" : "cpu");
  return out;
}

std::string PlacementReportJson(const ModelProblem& model, const PlacementResult& result,
                                const std::string& plan_path) {
  const PlacementProblem& p = model.problem;
  json layers = json::array();
  for (size_t l = 0; l < p.layers.size(); ++l) {
    layers.push_back(
        {{"layer", l},
         {"gpu_neurons", result.placement.gpu_neurons[l].size()},
         {"n_ff", p.layers[l].n_ff()},
         {"min_share_neurons", result.groups[l].NeuronsInFirst(result.groups[l].min_share_groups)},
         {"coverage", result.figures.layer_coverage[l]},
         {"attention_on_gpu", result.placement.attention_on_gpu[l] != 0},
         {"greedy_gpu_neurons", result.greedy.gpu_neurons[l].size()}});
  }
  json report = {
      {"model", model.config.name},
      {"model_digest", model.model_digest},
      {"n_layers", model.config.n_layers},
      {"n_ff", model.config.n_ff},
      {"weight_dtype", model.weight_dtype},
      {"profile_tokens", model.profile_tokens},
      {"budget_bytes", p.budget_bytes},
      {"minimum_bytes", p.MinimumBytes()},
      {"everything_bytes", p.EverythingBytes()},
      {"context", model.context},
      {"batch", model.batch},
      {"group_size", p.group_size},
      {"objective", std::string(ObjectiveName(p.objective))},
      {"hardware", p.hardware.name},
      {"predictor", model.predictor_source},
      {"solver",
       {{"status", result.solver},
        {"seconds", result.mip.seconds},
        {"cpu_seconds", result.mip.cpu_seconds},
        {"gap", result.mip.gap},
        {"objective", result.mip.objective},
        {"bound", result.mip.bound},
        {"nodes", result.mip.nodes},
        {"columns", result.mip.columns},
        {"rows", result.mip.rows},
        {"integers", result.mip.integers},
        {"time_limit_s", result.mip.time_limit_s},
        {"relative_gap", result.mip.relative_gap}}},
      {"placement", FiguresJson(result.figures)},
      {"greedy", FiguresJson(result.greedy_figures)},
      {"greedy_seconds", result.greedy_seconds},
      {"output_on_gpu", result.placement.output_on_gpu},
      {"layers", layers},
      {"plan", plan_path},
  };
  return report.dump(2) + "\n";
}

}  // namespace pinfer
