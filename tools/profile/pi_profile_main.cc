// pi-profile: run a model over text, count which FFN neurons fire, calibrate thresholds for
// silu/gelu models, and dump predictor training samples.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "runtime/common/cli_common.h"
#include "runtime/common/cli_flags.h"
#include "tools/profile/profiler.h"

namespace pinfer {
namespace {

constexpr char kProgram[] = "pi-profile";

int Main(int argc, char** argv) {
  RemoveTemporaryFilesOnInterrupt();
  CLI::App app{
      "Profile a .pi model's FFN activations over text: per layer and neuron how often it fires "
      "and its mean |activation|, written to model.profile.pi (with a plot, model.profile.svg); "
      "for silu/gelu models, per-layer thresholds calibrated to a target sparsity; optionally "
      "predictor training samples (model.samples.zst). Datasets: plain UTF-8 text, or JSONL "
      "(*.jsonl, *.ndjson) with a \"text\" field per line. The report goes to stdout, progress "
      "to stderr.\n\n"
      "Examples:\n"
      "  pi-profile -m relu-llama-260k.pi --dataset tests/data/text/tinystories_valid_head.txt\n"
      "  pi-profile -m relu-llama-260k.pi --dataset a.txt b.jsonl --max-tokens 50000 "
      "--dump-samples --sample-every 2\n"
      "  pi-profile -m stories260K.pi --dataset tests/data/text/tinystories_valid_head.txt "
      "--target-sparsity 0.5 --json\n"
      "  pi-profile -m stories260K.pi --dataset held_back.txt --thresholds-from "
      "stories260K.profile.pi -o held_back.profile.pi",
      kProgram};
  ProfileOptions options;
  std::string sample_dtype = "f16";
  double target_sparsity = -1;
  bool json = false, quiet = false;
  app.add_option("-m,--model", options.model_path, "model file (.pi)")->required();
  app.add_option("--dataset", options.datasets, "text or JSONL files (several at once)")
      ->required()
      ->expected(1, -1);
  app.add_option("-o,--output", options.output_path,
                 "profile to write (default: beside the model, model.profile.pi)");
  app.add_option("--plot", options.plot_path,
                 "SVG plot to write (default: beside the profile, model.profile.svg)");
  app.add_option("--max-tokens", options.max_tokens,
                 "tokens to profile, BOS included (-1: the whole dataset)")
      ->capture_default_str();
  app.add_option("-c,--ctx-size", options.context,
                 "tokens per chunk, each evaluated from an empty cache (0: the model's context)")
      ->capture_default_str();
  app.add_option("-b,--batch-size", options.batch_size, "prompt tokens per forward pass")
      ->capture_default_str();
  app.add_option("-t,--threads", options.threads,
                 "CPU threads (-1: all; at most the hardware's thread count)")
      ->check(ThreadCount())
      ->capture_default_str();
  CLI::Option* target = app.add_option(
      "--target-sparsity", target_sparsity,
      "silu/gelu models: fraction S of |act(gate.x)| per layer to put at or below the threshold "
      "(0 < S < 1); an error for models with exact zeros (ReLU family)");
  app.add_option("--calibration-tokens", options.calibration_tokens,
                 "tokens from the start of the dataset that calibrate the thresholds (0: 4096, "
                 "at most --max-tokens; a given count may exceed --max-tokens)")
      ->capture_default_str();
  app.add_option("--thresholds-from", options.thresholds_from,
                 "silu/gelu models: use the thresholds of this profile (of the same model) "
                 "instead of calibrating, e.g. to measure their sparsity on held-back text");
  CLI::Option* dump =
      app.add_flag("--dump-samples", options.dump_samples,
                   "write predictor training pairs (FFN input, fired mask) per layer and token");
  CLI::Option* samples_path =
      app.add_option("--samples", options.samples_path,
                     "sample file to write (implies --dump-samples; default: beside the model, "
                     "model.samples.zst)");
  app.add_option("--sample-every", options.sample_every, "keep every K-th token's samples")
      ->capture_default_str();
  app.add_option("--sample-dtype", sample_dtype, "dtype of the sampled inputs: f16 or f32")
      ->capture_default_str();
  app.add_flag("--json", json, "print the report as JSON");
  app.add_flag("-q,--quiet", quiet, "no progress on stderr");
  AddVersionFlag(app, kProgram);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return ReportParseError(kProgram, app, e);
  }
  options.threads = ThreadsToUseWithWarning(kProgram, options.threads);
  if (*target) {
    if (!(target_sparsity > 0 && target_sparsity < 1)) {
      return ReportError(kProgram, absl::InvalidArgumentError(absl::StrCat(
                                       "--target-sparsity must be between 0 and 1 (exclusive), "
                                       "got ",
                                       target_sparsity)));
    }
    options.target_sparsity = target_sparsity;
  }
  if (*samples_path) options.dump_samples = true;
  if (app.count("--sample-every") > 0 && !options.dump_samples && !*dump) {
    return ReportError(kProgram, absl::InvalidArgumentError("--sample-every needs --dump-samples"));
  }
  if (sample_dtype == "f16") {
    options.sample_dtype = DType::kF16;
  } else if (sample_dtype == "f32") {
    options.sample_dtype = DType::kF32;
  } else {
    return ReportError(
        kProgram, absl::InvalidArgumentError(
                      absl::StrCat("--sample-dtype must be f16 or f32, got '", sample_dtype, "'")));
  }
  options.command_line = JoinCommandLine(argc, argv);
  options.progress = !quiet;
  return PrintReport(kProgram, RunProfile(options), json);
}

}  // namespace
}  // namespace pinfer

int main(int argc, char** argv) { return pinfer::Main(argc, argv); }
