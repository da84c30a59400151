// pi-train-predictor: train one activation predictor per layer from pi-profile's samples and
// write model.predictor.pi.
#include <cstdlib>
#include <iostream>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "runtime/common/cli_common.h"
#include "runtime/common/cli_flags.h"
#include "tools/train_predictor/powerinfer_activations.h"
#include "tools/train_predictor/powerinfer_import.h"
#include "tools/train_predictor/powerinfer_layout.h"
#include "tools/train_predictor/train_predictor.h"

namespace pinfer {
namespace {

constexpr char kProgram[] = "pi-train-predictor";

int Main(int argc, char** argv) {
  RemoveTemporaryFilesOnInterrupt();
  CLI::App app{
      "Train the per-layer activation predictors of a .pi model from pi-profile's samples "
      "(model.samples.zst, from pi-profile --dump-samples) and write model.predictor.pi. Each "
      "layer gets a small MLP x -> Linear(dim, rank) -> ReLU -> Linear(rank, n_ff) -> sigmoid, "
      "trained with LibTorch (binary cross-entropy weighted for the rare fired class, Adam) on "
      "shuffled samples; a held-out validation split chooses the decision threshold so that "
      "recall >= --target-recall. The report goes to stdout, per-epoch progress to stderr.\n\n"
      "Examples:\n"
      "  pi-profile -m relu-llama-260k.pi --dataset tests/data/text/tinystories_valid_head.txt "
      "--dump-samples\n"
      "  pi-train-predictor -m relu-llama-260k.pi\n"
      "  pi-train-predictor -m model.pi --samples model.samples.zst -o model.predictor.pi "
      "--rank 128 --target-recall 0.995 --epochs 20 --seed 7 --dtype q8_0 --json\n\n"
      "PowerInfer interop (no training):\n"
      "  --import POWERINFER.gguf writes model.predictor.pi from PowerInfer's own predictors "
      "(blk.N.fc1/fc2) for the model.pi that pi-convert made from that GGUF (checked by its source "
      "digest). PowerInfer's fc2 . relu(fc1 . h) reads the residual h before ffn_norm; the import "
      "folds ffn_norm's weight into fc1, biases are zero, and every layer's logit threshold is "
      "PowerInfer's global powerinfer.sparse_threshold (default 0), or the value of the "
      "environment variable LLAMA_SPARSE_PRED_THRESHOLD when it is set, as PowerInfer does. At "
      "threshold 0 the decisions are PowerInfer's exactly; other thresholds are approximate. "
      "--dtype: f32 (auto; exact), f16 or q8_0.\n"
      "  --import-activations DIR writes model.profile.pi from PowerInfer's "
      "activation/activation_N.pt (per-neuron firing counts; -o names another file), so that "
      "pi-place works without a dataset; --export-activations DIR writes them from "
      "model.profile.pi (--profile) for PowerInfer's solver.\n"
      "  pi-convert ReluLLaMA.powerinfer.gguf -o relu.pi\n"
      "  pi-train-predictor -m relu.pi --import ReluLLaMA.powerinfer.gguf\n"
      "  pi-train-predictor -m relu.pi --import-activations ReluLLaMA/activation\n"
      "  pi-train-predictor -m relu.pi --export-activations out/activation",
      kProgram};
  TrainPredictorOptions options;
  std::string rank = "auto", dtype = "auto", memory = "1G";
  bool json = false, quiet = false;
  std::string import_gguf, import_activations, export_activations, profile_path;
  int64_t activation_tokens = 0;
  app.add_option("-m,--model", options.model_path, "model file (.pi)")->required();
  auto* import_option = app.add_option(
      "--import", import_gguf,
      "write model.predictor.pi from this PowerInfer GGUF's predictors instead of training");
  auto* import_activations_option =
      app.add_option("--import-activations", import_activations,
                     "write model.profile.pi from this directory of PowerInfer's activation_N.pt");
  auto* export_activations_option = app.add_option(
      "--export-activations", export_activations,
      "write activation_N.pt for PowerInfer's solver into this directory from the profile");
  import_option->excludes(import_activations_option)->excludes(export_activations_option);
  import_activations_option->excludes(export_activations_option);
  app.add_option("--profile", profile_path,
                 "--export-activations: the profile to read (default: beside the model)");
  app.add_option("--activation-tokens", activation_tokens,
                 "--import-activations: tokens the counts were taken over (the files do not say; "
                 "default: the largest count)");
  app.add_option("--samples", options.samples_path,
                 "training samples (default: beside the model, model.samples.zst)");
  app.add_option("-o,--output", options.output_path,
                 "predictor to write (default: beside the model, model.predictor.pi)");
  app.add_option("--rank", rank,
                 "hidden width of every layer's predictor, or 'auto': per layer the rank of 32, "
                 "64, ... 1024 (up to --max-rank and n_ff) of lowest expected cost per token at "
                 "the target recall: the predictor's bytes plus its predicted density times the "
                 "layer's FFN bytes (climbing stops when the cost rises)")
      ->capture_default_str();
  app.add_option("--max-rank", options.max_rank, "largest rank --rank auto tries")
      ->capture_default_str();
  app.add_option("--target-recall", options.target_recall,
                 "validation recall each layer's threshold must reach")
      ->capture_default_str();
  app.add_option("--density-margin", options.density_margin,
                 "--rank auto: also stop climbing at a rank whose predicted density is <= (1 + "
                 "margin) x the true density (a shorter training; 0: off, the cost alone decides)")
      ->capture_default_str();
  app.add_option("--epochs", options.epochs, "passes over the training samples per rank")
      ->capture_default_str();
  app.add_option("--batch-size", options.batch_size, "samples per optimizer step")
      ->capture_default_str();
  app.add_option("--learning-rate", options.learning_rate, "Adam's learning rate")
      ->capture_default_str();
  app.add_option("--max-pos-weight", options.max_pos_weight,
                 "cap of a neuron's positive weight (not fired / fired) in the loss")
      ->capture_default_str();
  app.add_option("--validation-fraction", options.validation_fraction,
                 "fraction of the tokens (in blocks of 64) held out for validation")
      ->capture_default_str();
  app.add_option("--seed", options.seed,
                 "seed of the split, the initial weights and the shuffling: the same seed (and "
                 "-t) gives the same file")
      ->capture_default_str();
  app.add_option("--dtype", dtype,
                 "dtype of the stored weights: auto (q8_0 where it holds the target recall in "
                 "every layer at a predicted density at most 2% above f16's, else f16), f16, q8_0 "
                 "or f32")
      ->capture_default_str();
  app.add_option("-t,--threads", options.threads,
                 "CPU threads (-1: all; at most the hardware's thread count)")
      ->check(ThreadCount())
      ->capture_default_str();
  app.add_option("--device", options.device,
                 "auto (CUDA when this LibTorch build has it), cpu or cuda")
      ->capture_default_str();
  app.add_option("--memory", memory,
                 "decoded samples held in memory per layer (larger layers are streamed)")
      ->capture_default_str();
  app.add_flag("--powerinfer-compatible", options.powerinfer_compatible,
               "train a predictor that pi-export --format powerinfer can write as fc1/fc2: no "
               "biases and the logit threshold 0 in every layer (the target recall is then not "
               "held; the report says what recall is reached)");
  app.add_flag("--json", json, "print the report as JSON");
  app.add_flag("-q,--quiet", quiet, "no progress on stderr");
  AddVersionFlag(app, kProgram);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return ReportParseError(kProgram, app, e);
  }
  if (!import_activations.empty() || !export_activations.empty()) {
    ActivationFilesOptions files;
    files.model_path = options.model_path;
    files.directory = import_activations.empty() ? export_activations : import_activations;
    files.profile_path = import_activations.empty() ? profile_path : options.output_path;
    files.tokens = activation_tokens;
    files.command_line = JoinCommandLine(argc, argv);
    return PrintReport(kProgram,
                       import_activations.empty() ? ExportPowerInferActivations(files)
                                                  : ImportPowerInferActivations(files),
                       json);
  }
  if (!import_gguf.empty()) {
    ImportPredictorOptions import;
    import.model_path = options.model_path;
    import.gguf_path = import_gguf;
    import.output_path = options.output_path;
    import.command_line = JoinCommandLine(argc, argv);
    if (dtype != "auto") {
      absl::StatusOr<DType> d = ParseDType(dtype);
      if (!d.ok()) {
        return ReportError(kProgram,
                           absl::InvalidArgumentError(absl::StrCat(
                               "--dtype must be auto, f32, f16 or q8_0, got '", dtype, "'")));
      }
      import.dtype = *d;
    }
    if (const char* env = std::getenv(powerinfer::kThresholdEnvironment); env != nullptr) {
      float t = 0;
      if (!absl::SimpleAtof(env, &t)) {
        return ReportError(
            kProgram, absl::InvalidArgumentError(absl::StrCat(powerinfer::kThresholdEnvironment,
                                                              "='", env, "' is not a number")));
      }
      import.threshold_override = t;
    }
    return PrintReport(kProgram, ImportPowerInferPredictor(import), json);
  }
  options.threads = ThreadsToUseWithWarning(kProgram, options.threads);
  if (absl::AsciiStrToLower(rank) == "auto") {
    options.rank = 0;
  } else if (!absl::SimpleAtoi(rank, &options.rank) || options.rank <= 0) {
    return ReportError(kProgram,
                       absl::InvalidArgumentError(absl::StrCat(
                           "--rank must be a positive integer or 'auto', got '", rank, "'")));
  }
  options.dtype_auto = dtype == "auto";
  absl::StatusOr<DType> parsed_dtype = ParseDType(options.dtype_auto ? "f16" : dtype);
  if (!parsed_dtype.ok()) {
    return ReportError(kProgram, absl::InvalidArgumentError(absl::StrCat(
                                     "--dtype must be auto, f16, q8_0 or f32, got '", dtype, "'")));
  }
  options.dtype = *parsed_dtype;
  absl::StatusOr<uint64_t> memory_bytes = ParseByteSize(memory);
  if (!memory_bytes.ok()) {
    return ReportError(kProgram, absl::InvalidArgumentError(
                                     absl::StrCat("--memory: ", memory_bytes.status().message())));
  }
  options.memory_bytes = *memory_bytes;
  options.command_line = JoinCommandLine(argc, argv);
  options.progress = !quiet;
  return PrintReport(kProgram, TrainPredictor(options), json);
}

}  // namespace
}  // namespace pinfer

int main(int argc, char** argv) { return pinfer::Main(argc, argv); }
