// What pi-profile does once its flags are parsed:
//   1. load the model and check the dataset files;
//   2. tokenize the dataset once to count its tokens (and find bad input before any model work);
//   3. calibrated models (silu, gelu): evaluate the first --calibration-tokens tokens and choose
//      each layer's threshold τ for --target-sparsity (threshold_calibrator.h), or take τ from
//      another profile of the same model (--thresholds-from);
//   4. evaluate every chunk (prompt batches, no logits) with an ActivationCounter, which counts
//      firings and, with --dump-samples, streams (FFN input, fired mask) pairs to the sample file;
//   5. write model.profile.pi, the plot model.profile.svg and the sample file, all or none.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "format/dtype.h"
#include "tools/profile/profile_report.h"

namespace pinfer {

struct ProfileOptions {
  std::string model_path;
  std::vector<std::string> datasets;
  std::string output_path;  // "": beside the model (model.pi -> model.profile.pi)
  std::string plot_path;    // "": beside the profile (model.profile.pi -> model.profile.svg)
  int64_t max_tokens = -1;  // -1: the whole dataset
  int64_t context = 0;      // tokens per chunk; 0: the model's training context
  int64_t batch_size = 256;
  int threads = -1;  // -1: all
  // Calibrated models: the fraction of |act(gate·x)| values to put below τ; < 0: not given.
  double target_sparsity = -1.0;
  // Tokens from the start of the dataset that calibrate the thresholds; 0: the default, 4096 but
  // no more than the tokens profiled. An explicit count may exceed --max-tokens.
  int64_t calibration_tokens = 0;
  int64_t reservoir_capacity = 0;  // values kept per layer for calibration; 0: the default
  // Calibrated models: take τ from this profile (made for the same model) instead of calibrating,
  // e.g. to measure on held-back text the sparsity that thresholds calibrated elsewhere give.
  std::string thresholds_from;
  bool dump_samples = false;
  std::string samples_path;  // "": beside the model (model.pi -> model.samples.zst)
  int64_t sample_every = 1;
  DType sample_dtype = DType::kF16;
  std::string command_line;  // provenance
  bool progress = true;
};

// Checks the flags that do not need the model; errors name the flag.
absl::Status ValidateProfileOptions(const ProfileOptions& options);

absl::StatusOr<ProfileReport> RunProfile(const ProfileOptions& options);

}  // namespace pinfer
