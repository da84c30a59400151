// pi-place: decides which neurons, dense tensors and KV cache live on the GPU for a VRAM budget,
// and writes model.plan.pi. `--calibrate` measures this machine's CPU for the cost model.
#include <cstdio>
#include <limits>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "format/output_check.h"
#include "runtime/common/cli_common.h"
#include "runtime/common/cli_flags.h"
#include "runtime/model/activation_profile.h"
#include "runtime/model/model_config.h"
#include "tools/solve_placement/calibrate.h"
#include "tools/solve_placement/model_problem.h"
#include "tools/solve_placement/place_model.h"
#include "tools/solve_placement/placement_report.h"
#include "tools/solve_placement/solve_placement.h"

namespace pinfer {
namespace {

constexpr char kProgram[] = "pi-place";

absl::StatusOr<HardwareModel> LoadHardware(const std::string& file, const std::string& gpu) {
  if (!file.empty()) return ReadHardwareFile(file);
  absl::StatusOr<HardwareModel> hw = GpuPreset(gpu);
  if (!hw.ok()) return absl::InvalidArgumentError(absl::StrCat("--gpu: ", hw.status().message()));
  return hw;
}

int Calibrate(const std::string& gpu, std::string output, bool quiet) {
  absl::StatusOr<HardwareModel> base = LoadHardware("", gpu);
  if (!base.ok()) return ReportError(kProgram, base.status());
  if (output.empty()) output = "hardware.json";
  const OutputFile outputs[] = {{"-o", output, std::nullopt}};
  if (absl::Status s = CheckOutputs(outputs, {}); !s.ok()) return ReportError(kProgram, s);
  if (!quiet) std::fprintf(stderr, "%s: measuring the CPU (a few seconds)...\n", kProgram);
  absl::StatusOr<CpuMeasurement> m = MeasureCpu({});
  if (!m.ok()) return ReportError(kProgram, m.status());
  const HardwareModel hw = WithMeasuredCpu(*base, *m);
  if (absl::Status s = WriteHardwareFile(output, hw); !s.ok()) return ReportError(kProgram, s);
  std::printf("%s", HardwareToJson(hw).c_str());
  if (!quiet) std::fprintf(stderr, "%s: wrote %s\n", kProgram, output.c_str());
  return 0;
}

int Main(int argc, char** argv) {
  RemoveTemporaryFilesOnInterrupt();
  CLI::App app{
      "Decide what lives on the GPU for a VRAM budget: per layer the hottest FFN neurons (in "
      "groups sorted by firing frequency), attention and its KV cache, the classifier. Solved as "
      "a mixed-integer program with COIN-OR CBC, reported against a greedy baseline, checked, "
      "and written as model.plan.pi.\n\n"
      "Examples:\n"
      "  pi-place -m model.pi --vram 24G\n"
      "  pi-place -m model.pi --profile model.profile.pi --vram 8G --ctx 4096 --objective latency "
      "--hardware hardware.json -o model.plan.pi --json\n"
      "  pi-place --calibrate --gpu h100 -o hardware.json",
      kProgram};
  std::string model_path, profile_path, predictor_path, vram, output,
      objective_name = "coverage", hardware_file, gpu = "rtx4090", workspace;
  ModelPlacementOptions options;
  SolveOptions solve;
  bool json = false, quiet = false, calibrate = false, greedy_only = false;
  app.add_option("-m,--model", model_path, "model.pi");
  app.add_option("--profile", profile_path, "activation profile (default: model.profile.pi)");
  app.add_option("--predictor", predictor_path,
                 "predictor whose size to count (default: model.predictor.pi if present, else "
                 "an estimate)");
  app.add_option("--vram", vram, "VRAM budget: 24G, 512M, 1.5G or bytes");
  app.add_option("--ctx", options.context,
                 "context length of the GPU KV cache (default: min(4096, training context))")
      ->check(IntegerIn(1, std::numeric_limits<int32_t>::max()));
  app.add_option("--group", options.group_size, "neurons per placement group")
      ->check(IntegerIn(1, 1 << 24))
      ->capture_default_str();
  app.add_option("--batch", options.batch, "tokens per forward pass the workspace is sized for")
      ->check(IntegerIn(1, 1 << 16))
      ->capture_default_str();
  app.add_option("--workspace", workspace, "GPU workspace bytes (overrides the estimate)");
  app.add_option("--predictor-rank", options.predictor_rank,
                 "rank of the estimated predictor when there is no predictor file")
      ->check(IntegerIn(1, 1 << 20));
  app.add_option("--objective", objective_name, "coverage or latency")->capture_default_str();
  auto* hardware_option =
      app.add_option("--hardware", hardware_file, "hardware file (JSON, see --calibrate)");
  app.add_option(
         "--gpu", gpu,
         absl::StrCat("GPU preset of the cost model: ", absl::StrJoin(GpuPresetNames(), ", ")))
      ->capture_default_str()
      ->excludes(hardware_option);
  app.add_option("--time-limit", solve.mip.time_limit_s, "CBC time limit in seconds")
      ->check(FiniteIn(0.0, 1e7, /*low_open=*/true))
      ->capture_default_str();
  app.add_option("--gap", solve.mip.relative_gap, "relative optimality gap at which CBC stops")
      ->check(FiniteIn(0.0, 1.0))
      ->capture_default_str();
  app.add_flag("--greedy", greedy_only, "skip CBC: use the greedy baseline");
  app.add_option("-o,--output", output,
                 "plan to write (default: model.plan.pi); with --calibrate, the hardware file "
                 "(default: hardware.json)");
  app.add_flag("--json", json, "print the report as JSON on stdout");
  app.add_flag("--calibrate", calibrate, "measure this machine's CPU and write a hardware file");
  app.add_flag("-q,--quiet", quiet, "no progress output");
  AddVersionFlag(app, kProgram);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return ReportParseError(kProgram, app, e);
  }
  if (calibrate) return Calibrate(gpu, output, quiet);
  if (model_path.empty()) {
    return ReportError(kProgram, absl::InvalidArgumentError("-m/--model is required"));
  }
  if (vram.empty()) return ReportError(kProgram, absl::InvalidArgumentError("--vram is required"));
  absl::StatusOr<uint64_t> budget = ParseByteSize(vram);
  if (!budget.ok()) {
    return ReportError(
        kProgram, absl::InvalidArgumentError(absl::StrCat("--vram: ", budget.status().message())));
  }
  options.budget_bytes = *budget;
  if (!workspace.empty()) {
    absl::StatusOr<uint64_t> bytes = ParseByteSize(workspace);
    if (!bytes.ok()) {
      return ReportError(kProgram, absl::InvalidArgumentError(
                                       absl::StrCat("--workspace: ", bytes.status().message())));
    }
    options.workspace_bytes = *bytes;
  }
  absl::StatusOr<Objective> objective = ParseObjective(objective_name);
  if (!objective.ok()) {
    return ReportError(kProgram, absl::InvalidArgumentError(
                                     absl::StrCat("--objective: ", objective.status().message())));
  }
  options.objective = *objective;
  absl::StatusOr<HardwareModel> hardware = LoadHardware(hardware_file, gpu);
  if (!hardware.ok()) return ReportError(kProgram, hardware.status());
  options.hardware = *hardware;
  solve.greedy_only = greedy_only;

  PlaceModelOptions place;
  place.model_path = model_path;
  place.profile_path = profile_path;
  place.predictor_path = predictor_path;
  place.output_path = output;
  place.hardware_file = hardware_file;
  place.placement = options;
  place.solve = solve;
  place.provenance.SetString(keys::kProvenanceTool, kProgram);
  place.provenance.SetString(keys::kProvenanceArguments, JoinCommandLine(argc, argv));
  place.program = kProgram;
  place.progress = !quiet;
  absl::StatusOr<PlacedModel> placed = PlaceModel(place);
  if (!placed.ok()) return ReportError(kProgram, placed.status());
  output = placed->output_path;
  if (json) {
    std::printf("%s", PlacementReportJson(placed->problem, placed->result, output).c_str());
  } else {
    std::printf("%s", FormatPlacementReport(placed->problem, placed->result).c_str());
  }
  if (!quiet) std::fprintf(stderr, "%s: wrote %s\n", kProgram, output.c_str());
  return 0;
}

}  // namespace
}  // namespace pinfer

int main(int argc, char** argv) { return pinfer::Main(argc, argv); }
