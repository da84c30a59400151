// pi-prepare: from a model (GGUF, llama2.c, HF directory or .pi) to a tuned plan in one command:
// convert, profile with samples, train the predictor and, with --vram, place.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "runtime/common/cli_common.h"
#include "runtime/common/cli_flags.h"
#include "tools/prepare/prepare.h"

namespace pinfer {
namespace {

constexpr char kProgram[] = "pi-prepare";

int Main(int argc, char** argv) {
  RemoveTemporaryFilesOnInterrupt();
  CLI::App app{
      "Prepare a model for activation-locality inference in one command: convert it to .pi "
      "(unless it is one), profile its FFN activations over text with predictor training "
      "samples, train the per-layer predictors and, with --vram, place it for a GPU budget. "
      "The stages are pi-convert, pi-profile --dump-samples, pi-train-predictor and pi-place, "
      "run in-process; their artifacts go beside the converted model (or in -o DIR): X.pi, "
      "X.profile.pi (+ X.profile.svg), X.samples.zst, X.predictor.pi, X.plan.pi.\n\n"
      "A stage whose artifacts exist and record the same inputs (digests) and settings is "
      "skipped, so a rerun with another --vram only places again; --force redoes every stage. "
      "Progress and one line per stage go to stderr; the summary and the pi-run / pi-server "
      "commands to use go to stdout (--json: one JSON report).\n\n"
      "Examples:\n"
      "  pi-prepare -m models/relu-llama-260k/model_q80.bin --tokenizer "
      "models/relu-llama-260k/tok1024.bin \\\n"
      "      --ffn-act shifted_relu:0.25 --norm-act shifted_relu:1.0 "
      "--dataset tests/data/text/tinystories_valid_head.txt -o out\n"
      "  pi-prepare -m model.pi --dataset a.txt b.jsonl --vram 8G\n"
      "  pi-prepare -m ~/models/ProSparse-Llama-2-7B --dtype q4_0 --dataset wiki.txt --vram 24G "
      "--json\n"
      "  pi-prepare -m stories260K.pi --dataset tests/data/text/tinystories_valid_head.txt "
      "--target-sparsity 0.5",
      kProgram};
  PrepareOptions options;
  std::string vram;
  bool json = false, quiet = false;
  app.add_option("-m,--model", options.source,
                 "the model: a .pi file, a GGUF or llama2.c file, or an HF directory")
      ->required();
  app.add_option("--dataset", options.datasets, "text or JSONL files to profile (several at once)")
      ->required()
      ->expected(1, -1);
  app.add_option("-o,--output-dir", options.output_dir,
                 "directory of the artifacts (default: beside the source)");
  app.add_option("--tokenizer", options.tokenizer,
                 "convert: the tokenizer (required for llama2.c; for HF directories one to use "
                 "instead of theirs)");
  app.add_option("--dtype", options.dtype,
                 "convert: dtype of the weight matrices, f32, f16, bf16, q8_0 or q4_0 (default: as "
                 "the source)");
  app.add_option("--ffn-act", options.ffn_act,
                 "convert: FFN activation, silu|gelu|relu|relu2|drelu|fatrelu:T|shifted_relu:S "
                 "(default: what the source says)");
  app.add_option("--norm-act", options.norm_act,
                 "convert: activation after the norms, none|shifted_relu:S (default: none)");
  app.add_option("--max-tokens", options.max_tokens,
                 "profile: tokens to profile, BOS included (-1: the whole dataset)")
      ->capture_default_str();
  app.add_option("--target-sparsity", options.target_sparsity,
                 "profile: silu/gelu models, the fraction of |act| per layer to put below the "
                 "calibrated threshold (0 < S < 1)")
      ->check(FiniteIn(0.0, 1.0, /*low_open=*/true));
  app.add_option("--rank", options.rank, "train: predictor rank, or auto")->capture_default_str();
  app.add_option("--epochs", options.epochs, "train: passes over the samples per rank")
      ->check(IntegerIn(1, 100000))
      ->capture_default_str();
  app.add_option("--seed", options.seed, "train: seed (the same seed and -t give the same file)")
      ->capture_default_str();
  app.add_option("--target-recall", options.target_recall,
                 "train: validation recall each layer's threshold must reach")
      ->check(FiniteIn(0.0, 1.0, /*low_open=*/true))
      ->capture_default_str();
  app.add_option("--vram", vram,
                 "place: VRAM budget (24G, 512M, 1.5G or bytes); no --vram: no plan");
  app.add_option("--ctx", options.context,
                 "place: context of the GPU KV cache (default: min(4096, training context))")
      ->check(IntegerIn(1, 1 << 30));
  app.add_option("--gpu", options.gpu, "place: GPU preset of the cost model")
      ->capture_default_str();
  app.add_option("-t,--threads", options.threads,
                 "CPU threads (-1: all; at most the hardware's thread count)")
      ->check(ThreadCount())
      ->capture_default_str();
  app.add_flag("--force", options.force, "redo every stage, even those up to date");
  app.add_flag("--json", json, "print the report as JSON on stdout");
  app.add_flag("-q,--quiet", quiet, "no progress on stderr");
  AddVersionFlag(app, kProgram);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return ReportParseError(kProgram, app, e);
  }
  options.threads = ThreadsToUseWithWarning(kProgram, options.threads);
  if (!vram.empty()) {
    absl::StatusOr<uint64_t> budget = ParseByteSize(vram);
    if (!budget.ok()) {
      return ReportError(kProgram, absl::InvalidArgumentError(
                                       absl::StrCat("--vram: ", budget.status().message())));
    }
    options.vram_bytes = *budget;
    options.vram_text = vram;
  }
  options.progress = !quiet;
  // Invoked by a path (build/bin/pi-prepare): pi-run and pi-server are its neighbours there.
  if (const std::string self = argv[0]; self.find('/') != std::string::npos) {
    options.program_dir = self.substr(0, self.rfind('/') + 1);
  }
  return PrintReport(kProgram, RunPrepare(options), json);
}

}  // namespace
}  // namespace pinfer

int main(int argc, char** argv) { return pinfer::Main(argc, argv); }
