// place_bench: solves pi-place's MIP for Llama-2 7B/13B/70B shapes with synthetic power-law
// profiles at several VRAM budgets and prints, per case, the CBC solve time, status and gap, the
// expected coverage and latency, and the greedy baseline measured in the same run.
#include <cstdio>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "runtime/app/cli_common.h"
#include "tools/solve_placement/greedy_placement.h"
#include "tools/solve_placement/solve_placement.h"
#include "tools/solve_placement/synthetic_problem.h"

namespace pinfer {
namespace {

constexpr char kProgram[] = "place_bench";

int Main(int argc, char** argv) {
  CLI::App app{
      "Solve times of pi-place's placement MIP at Llama-2 shapes with synthetic profiles.\n\n"
      "Example:\n"
      "  build/bin/place_bench --shapes llama-7b,llama-70b --dtypes q4_0 --budgets 4G,24G",
      kProgram};
  std::string shapes = "llama-7b,llama-13b,llama-70b", dtypes = "q4_0,f16",
              budgets = "4G,8G,12G,24G", objective_name = "coverage", gpu = "rtx4090";
  SolveOptions solve;
  int64_t group = 64, context = 4096;
  app.add_option("--shapes", shapes, "comma-separated shapes")->capture_default_str();
  app.add_option("--dtypes", dtypes, "comma-separated weight dtypes")->capture_default_str();
  app.add_option("--budgets", budgets, "comma-separated VRAM budgets")->capture_default_str();
  app.add_option("--objective", objective_name, "coverage or latency")->capture_default_str();
  app.add_option("--gpu", gpu, "GPU preset of the cost model")->capture_default_str();
  app.add_option("--group", group, "neurons per group")->capture_default_str();
  app.add_option("--ctx", context, "context length")->capture_default_str();
  app.add_option("--time-limit", solve.mip.time_limit_s, "CBC time limit (s)")->capture_default_str();
  app.add_option("--gap", solve.mip.relative_gap, "CBC relative gap")->capture_default_str();
  app.add_option("--cbc-log", solve.mip.log_level, "CBC log level (0: silent)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  absl::StatusOr<Objective> objective = ParseObjective(objective_name);
  if (!objective.ok()) return ReportError(kProgram, objective.status());
  absl::StatusOr<HardwareModel> hardware = GpuPreset(gpu);
  if (!hardware.ok()) return ReportError(kProgram, hardware.status());

  std::printf("objective %s, group %lld, ctx %lld, cost model %s, CBC limit %.0f s, gap %.0e\n",
              objective_name.c_str(), static_cast<long long>(group),
              static_cast<long long>(context), gpu.c_str(), solve.mip.time_limit_s,
              solve.mip.relative_gap);
  std::printf("%-10s %-5s %6s %10s %6s %6s %7s %6s %-14s %6s %7s %7s %7s %8s %8s %8s\n",
              "shape", "dtype", "budget", "everything", "groups", "cols", "solve_s", "cpu_s",
              "status", "gap%", "cov%", "greedy%", "naive%", "lat_ms", "greedy", "naive");
  for (absl::string_view shape_name : absl::StrSplit(shapes, ',')) {
    absl::StatusOr<ModelConfig> config = LlamaShape(std::string(shape_name));
    if (!config.ok()) return ReportError(kProgram, config.status());
    for (absl::string_view dtype_name : absl::StrSplit(dtypes, ',')) {
      absl::StatusOr<DType> dtype = ParseDType(std::string(dtype_name));
      if (!dtype.ok()) return ReportError(kProgram, dtype.status());
      for (absl::string_view budget_text : absl::StrSplit(budgets, ',')) {
        absl::StatusOr<uint64_t> budget = ParseByteSize(std::string(budget_text));
        if (!budget.ok()) return ReportError(kProgram, budget.status());
        SyntheticOptions options;
        options.dtype = *dtype;
        options.budget_bytes = *budget;
        options.context = context;
        options.group_size = group;
        options.objective = *objective;
        options.hardware = *hardware;
        absl::StatusOr<PlacementProblem> problem = SyntheticProblem(*config, options);
        if (!problem.ok()) return ReportError(kProgram, problem.status());
        absl::StatusOr<PlacementResult> r = SolvePlacement(*problem, solve);
        if (!r.ok()) return ReportError(kProgram, r.status());
        int64_t groups = 0;
        for (const LayerGroups& g : r->groups) groups += g.groups();
        const PlacementFigures naive = Evaluate(
            *problem, ToNeurons(r->groups, GreedyPlacement(*problem, r->groups, /*naive=*/true)));
        std::printf(
            "%-10s %-5s %6s %10s %6lld %6lld %7.3f %6.3f %-14s %6.3f %7.2f %7.2f %7.2f %8.2f %8.2f "
            "%8.2f\n",
            std::string(shape_name).c_str(), std::string(dtype_name).c_str(),
            std::string(budget_text).c_str(), FormatBytes(problem->EverythingBytes()).c_str(),
            static_cast<long long>(groups), static_cast<long long>(r->mip.columns),
            r->mip.seconds, r->mip.cpu_seconds, r->solver.c_str(), r->mip.gap * 100,
            r->figures.coverage * 100, r->greedy_figures.coverage * 100, naive.coverage * 100,
            r->figures.latency_s * 1e3, r->greedy_figures.latency_s * 1e3, naive.latency_s * 1e3);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}

}  // namespace
}  // namespace pinfer

int main(int argc, char** argv) { return pinfer::Main(argc, argv); }
