// place_bench: solves pi-place's MIP at the named shapes of bench/synth/shapes.h (Llama-2, OPT,
// Falcon) with synthetic power-law profiles (or for a real model.pi with its profile) at several
// VRAM budgets and prints, per case, the CBC solve time, status and gap, the expected coverage and
// latency, and the greedy baselines measured in the same run: the share-aware greedy pi-place
// reports, and the naive "global sort of groups by frequency per byte". With --placement it prints
// the placement itself instead: GPU bytes by kind, the share of neurons on the GPU, coverage, and
// the bytes the CPU is expected to read per token.
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "bench/synth/shapes.h"
#include "runtime/common/cli_common.h"
#include "tools/solve_placement/greedy_placement.h"
#include "tools/solve_placement/model_problem.h"
#include "tools/solve_placement/solve_placement.h"
#include "tools/solve_placement/synthetic_problem.h"

namespace pinfer {
namespace {

constexpr char kProgram[] = "place_bench";

absl::Status PrintRow(const std::string& name, const std::string& dtype, const std::string& budget,
                      const PlacementProblem& problem, const SolveOptions& solve) {
  absl::StatusOr<PlacementResult> r = SolvePlacement(problem, solve);
  if (!r.ok()) return r.status();
  int64_t groups = 0;
  for (const LayerGroups& g : r->groups) groups += g.groups();
  const PlacementFigures naive =
      Evaluate(problem, ToNeurons(r->groups, GreedyPlacement(problem, r->groups, /*naive=*/true)));
  std::printf(
      "%-16s %-5s %6s %10s %6lld %6lld %7.3f %6.3f %-14s %6.3f %7.2f %7.2f %7.2f %8.2f %8.2f "
      "%8.2f\n",
      name.c_str(), dtype.c_str(), budget.c_str(), FormatBytes(problem.EverythingBytes()).c_str(),
      static_cast<long long>(groups), static_cast<long long>(r->mip.columns), r->mip.seconds,
      r->mip.cpu_seconds, r->solver.c_str(), r->mip.gap * 100, r->figures.coverage * 100,
      r->greedy_figures.coverage * 100, naive.coverage * 100, r->figures.latency_s * 1e3,
      r->greedy_figures.latency_s * 1e3, naive.latency_s * 1e3);
  std::fflush(stdout);
  return absl::OkStatus();
}

// The bytes the CPU is expected to read per decoded token under `placement`: the attention (and
// the KV it reads) of CPU layers, each layer's cold neurons weighted by how often they fire, the
// predictors of layers without GPU neurons, and the classifier when it stays on the CPU.
double ExpectedCpuBytesPerToken(const PlacementProblem& problem, const NeuronPlacement& placement) {
  double bytes = 0;
  for (size_t l = 0; l < problem.layers.size(); ++l) {
    const LayerProblem& layer = problem.layers[l];
    const std::vector<int32_t>& hot = placement.gpu_neurons[l];
    if (placement.attention_on_gpu[l] == 0) {
      bytes += static_cast<double>(layer.attention_bytes + layer.kv_read_bytes);
    }
    double cold_mass = 0;
    for (float v : layer.frequency) cold_mass += v;
    for (int32_t i : hot) cold_mass -= layer.frequency[static_cast<size_t>(i)];
    bytes += cold_mass * static_cast<double>(layer.neuron_bytes);
    if (hot.empty()) bytes += static_cast<double>(layer.predictor_bytes);
  }
  if (!placement.output_on_gpu) bytes += static_cast<double>(problem.output_bytes);
  return bytes;
}

absl::Status PrintPlacementRow(const std::string& name, const std::string& dtype,
                               const std::string& budget, const PlacementProblem& problem,
                               const SolveOptions& solve) {
  absl::StatusOr<PlacementResult> r = SolvePlacement(problem, solve);
  if (!r.ok()) return r.status();
  int64_t neurons = 0, hot = 0, attention = 0;
  for (size_t l = 0; l < problem.layers.size(); ++l) {
    neurons += problem.layers[l].n_ff();
    hot += static_cast<int64_t>(r->placement.gpu_neurons[l].size());
    attention += r->placement.attention_on_gpu[l] != 0;
  }
  const PlanBytes& b = r->figures.bytes;
  std::printf(
      "%-11s %-5s %6s %10s %10s %10s %10s %9s %7.2f %7.2f %8s %10.1f %-14s\n", name.c_str(),
      dtype.c_str(), budget.c_str(), FormatBytes(problem.EverythingBytes()).c_str(),
      FormatBytes(b.total()).c_str(), FormatBytes(b.ffn).c_str(),
      FormatBytes(b.attention + b.kv).c_str(), r->placement.output_on_gpu ? "gpu" : "cpu",
      100.0 * static_cast<double>(hot) / static_cast<double>(neurons), r->figures.coverage * 100,
      absl::StrFormat("%lld/%zu", static_cast<long long>(attention), problem.layers.size()).c_str(),
      ExpectedCpuBytesPerToken(problem, r->placement) / 1e6, r->solver.c_str());
  std::fflush(stdout);
  return absl::OkStatus();
}

int Main(int argc, char** argv) {
  CLI::App app{
      "Solve times of pi-place's placement MIP at the named shapes of pi-synth (Llama-2, OPT, "
      "Falcon) with synthetic profiles, or for a real model with its profile; with --placement, "
      "the placement itself.\n\n"
      "Examples:\n"
      "  build/bin/place_bench --shapes llama-7b,llama-70b --dtypes q4_0 --budgets 4G,24G\n"
      "  build/bin/place_bench --placement --shapes opt-6.7b,opt-175b --budgets 8G,24G,80G\n"
      "  build/bin/place_bench --model relu.pi --profile relu.profile.pi --budgets 100K,200K "
      "--batch 1",
      kProgram};
  std::string shapes = "llama-7b,llama-13b,llama-70b", dtypes = "q4_0,f16",
              budgets = "4G,8G,12G,24G", objective_name = "coverage", gpu = "rtx4090", model_path,
              profile_path;
  SolveOptions solve;
  int64_t group = 64, context = 4096, batch = 512;
  bool placement = false;
  app.add_option("--shapes", shapes, "comma-separated named shapes of pi-synth --shape")
      ->capture_default_str();
  app.add_flag("--placement", placement,
               "print the placement (GPU bytes, hot share, CPU bytes per token) instead of the "
               "solve times and baselines");
  app.add_option("--dtypes", dtypes, "comma-separated weight dtypes")->capture_default_str();
  app.add_option("--budgets", budgets, "comma-separated VRAM budgets")->capture_default_str();
  app.add_option("--objective", objective_name, "coverage or latency")->capture_default_str();
  app.add_option("--gpu", gpu, "GPU preset of the cost model")->capture_default_str();
  app.add_option("--group", group, "neurons per group")->capture_default_str();
  app.add_option("--ctx", context, "context length")->capture_default_str();
  app.add_option("--batch", batch, "workspace batch")->capture_default_str();
  app.add_option("--time-limit", solve.mip.time_limit_s, "CBC time limit (s)")
      ->capture_default_str();
  app.add_option("--gap", solve.mip.relative_gap, "CBC relative gap")->capture_default_str();
  app.add_option("--cbc-log", solve.mip.log_level, "CBC log level (0: silent)");
  app.add_option("--model", model_path, "a real model.pi instead of the synthetic shapes");
  app.add_option("--profile", profile_path, "its profile (with --model)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  absl::StatusOr<Objective> objective = ParseObjective(objective_name);
  if (!objective.ok()) return ReportError(kProgram, objective.status());
  absl::StatusOr<HardwareModel> hardware = GpuPreset(gpu);
  if (!hardware.ok()) return ReportError(kProgram, hardware.status());

  std::printf("objective %s, group %lld, ctx %lld, cost model %s, CBC limit %.0f s, gap %.1e\n",
              objective_name.c_str(), static_cast<long long>(group),
              static_cast<long long>(context), gpu.c_str(), solve.mip.time_limit_s,
              solve.mip.relative_gap);
  if (placement) {
    std::printf("%-11s %-5s %6s %10s %10s %10s %10s %9s %7s %7s %8s %10s %-14s\n", "shape", "dtype",
                "budget", "everything", "gpu", "gpu_ffn", "gpu_attn+kv", "output", "hot%", "cov%",
                "attn_gpu", "cpu_MB/tok", "status");
  } else {
    std::printf("%-16s %-5s %6s %10s %6s %6s %7s %6s %-14s %6s %7s %7s %7s %8s %8s %8s\n", "shape",
                "dtype", "budget", "everything", "groups", "cols", "solve_s", "cpu_s", "status",
                "gap%", "cov%", "greedy%", "naive%", "lat_ms", "greedy", "naive");
  }
  const auto print_row = placement ? PrintPlacementRow : PrintRow;
  std::vector<std::string> budget_list = absl::StrSplit(budgets, ',');

  if (!model_path.empty()) {
    absl::StatusOr<std::unique_ptr<PiFile>> model = PiFile::Open(model_path);
    if (!model.ok()) return ReportError(kProgram, model.status());
    absl::StatusOr<ActivationProfile> profile =
        ActivationProfile::Read(profile_path, (*model)->ContentDigestHex());
    if (!profile.ok()) return ReportError(kProgram, profile.status());
    for (const std::string& budget_text : budget_list) {
      absl::StatusOr<uint64_t> budget = ParseByteSize(budget_text);
      if (!budget.ok()) return ReportError(kProgram, budget.status());
      ModelPlacementOptions options;
      options.budget_bytes = *budget;
      options.context = context;
      options.group_size = group;
      options.batch = batch;
      options.objective = *objective;
      options.hardware = *hardware;
      absl::StatusOr<ModelProblem> mp = BuildModelProblem(**model, *profile, options);
      if (!mp.ok()) return ReportError(kProgram, mp.status());
      const std::string name = mp->config.name.empty() ? "model" : mp->config.name;
      if (absl::Status s = print_row(name, mp->weight_dtype, budget_text, mp->problem, solve);
          !s.ok()) {
        return ReportError(kProgram, s);
      }
    }
    return 0;
  }

  for (absl::string_view shape_name : absl::StrSplit(shapes, ',')) {
    absl::StatusOr<synth::ShapeSpec> shape = synth::ParseShape(std::string(shape_name));
    if (!shape.ok()) return ReportError(kProgram, shape.status());
    const ModelConfig config = synth::ShapeModelConfig(*shape);
    for (absl::string_view dtype_name : absl::StrSplit(dtypes, ',')) {
      absl::StatusOr<DType> dtype = ParseDType(std::string(dtype_name));
      if (!dtype.ok()) return ReportError(kProgram, dtype.status());
      for (const std::string& budget_text : budget_list) {
        absl::StatusOr<uint64_t> budget = ParseByteSize(budget_text);
        if (!budget.ok()) return ReportError(kProgram, budget.status());
        SyntheticOptions options;
        options.dtype = *dtype;
        options.budget_bytes = *budget;
        options.context = context;
        options.batch = batch;
        options.group_size = group;
        options.objective = *objective;
        options.hardware = *hardware;
        absl::StatusOr<PlacementProblem> problem = SyntheticProblem(config, options);
        if (!problem.ok()) return ReportError(kProgram, problem.status());
        if (absl::Status s = print_row(std::string(shape_name), std::string(dtype_name),
                                       budget_text, *problem, solve);
            !s.ok()) {
          return ReportError(kProgram, s);
        }
      }
    }
  }
  return 0;
}

}  // namespace
}  // namespace pinfer

int main(int argc, char** argv) { return pinfer::Main(argc, argv); }
