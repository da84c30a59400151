// What pi-prepare does once its flags are parsed: from a model source to a tuned plan, stage by
// stage, through the stage libraries themselves (the same code as pi-convert, pi-profile,
// pi-train-predictor and pi-place, so each artifact is the file that tool would write):
//   1. convert          SRC (GGUF, llama2.c + tokenizer, HF directory) -> X.pi; skipped for a .pi
//   2. profile          X.pi + datasets -> X.profile.pi (+ X.profile.svg) and X.samples.zst
//   3. train-predictor  X.samples.zst -> X.predictor.pi
//   4. place            (with a VRAM budget) X.pi + profile + predictor -> X.plan.pi
// A stage whose artifacts exist and record the inputs and settings it would use now is skipped
// (stage_record.h); every artifact is written atomically by its stage, so an interrupted run
// leaves only complete files, and the next run redoes the stage that was cut short.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "tools/prepare/prepare_report.h"

namespace pinfer {

struct PrepareOptions {
  std::string source;      // -m: a .pi model, a GGUF or llama2.c file, or an HF directory
  std::string output_dir;  // -o: "" beside the source
  std::vector<std::string> datasets;
  // Conversion (sources other than .pi).
  std::string tokenizer;
  std::string dtype;     // "": as the source
  std::string ffn_act;   // "": as the source says
  std::string norm_act;  // "": as the source says
  // Profiling.
  int64_t max_tokens = 16000;   // as scripts/make_predictor.sh
  double target_sparsity = -1;  // < 0: not given (silu/gelu models then need it)
  // Training.
  std::string rank = "auto";
  int64_t epochs = 12;
  uint64_t seed = 0;
  double target_recall = 0.99;
  // Placement: only with a budget.
  std::optional<uint64_t> vram_bytes;
  std::string vram_text;  // as given, for the commands shown
  int64_t context = 0;    // 0: min(4096, the model's)
  std::string gpu = "rtx4090";
  int threads = -1;  // as resolved by ThreadsToUse
  // Where the pinfer programs are, as the user reached pi-prepare ("build/bin/"; "" when it was
  // found on PATH): the commands shown start with it, so they can be pasted as they are.
  std::string program_dir;
  bool force = false;
  bool progress = true;
};

// Checks what needs no model (flag values, the dataset and source paths); errors name the flag.
absl::Status ValidatePrepareOptions(const PrepareOptions& options);

absl::StatusOr<PrepareReport> RunPrepare(const PrepareOptions& options);

}  // namespace pinfer
