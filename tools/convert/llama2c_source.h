// Reads llama2.c checkpoints: "v0" (legacy fp32, run.c) and "v2" (Q8_0 groups, runq.c). The
// formats are described in models/README.md. llama2.c records no activation: the caller passes
// the declared ones (silu unless the user says otherwise).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "runtime/model/activation.h"
#include "tools/convert/source_model.h"

namespace pinfer {

struct Llama2cOptions {
  std::string tokenizer_path;  // llama2.c tokenizer.bin (required: the checkpoint has none)
  Activation ffn_act{ActivationKind::kSilu, 0.0f};
  Activation norm_act{ActivationKind::kNone, 0.0f};
};

// True when the file starts like a llama2.c checkpoint (v2 magic, or a plausible v0 header).
bool LooksLikeLlama2c(const std::string& path);

absl::StatusOr<SourceModel> ReadLlama2c(const std::string& path, const Llama2cOptions& options);

}  // namespace pinfer
