// The tensors a llama-family model.pi holds (runtime/model/tensor_names.h), derived from its
// hparams, in the canonical order every source writes them in. Readers collect SourceTensors by
// our name and AssembleTensors() checks the set and every shape, so that a source with a missing
// tensor or an inconsistent shape fails with one clear line instead of producing a model the
// runtime would reject (or worse, misread).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/model/model_config.h"
#include "tools/convert/source_model.h"

namespace pinfer {

struct ExpectedTensor {
  std::string name;
  std::vector<uint64_t> shape;
};

// token_embd, then per layer attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate,
// ffn_up, ffn_down_t, then output_norm and (unless tied) output; the tensors of other
// architectures (tensor_names.h: biases, position_embd) beside the ones they belong to.
std::vector<ExpectedTensor> ExpectedTensors(const ModelConfig& config);

// Checks the header's layer and vocabulary counts against the tensors present (see
// runtime/model/tensor_counts.h), before anything is allocated per layer or per token.
absl::Status CheckCountsAgainstTensors(const ModelConfig& config,
                                       const std::map<std::string, SourceTensor>& tensors,
                                       const std::string& source);

// Checks CheckCountsAgainstTensors, then that `tensors` (by our name) are exactly the expected ones
// with the expected shapes and returns them in canonical order. `source` names the input in errors.
absl::StatusOr<std::vector<SourceTensor>> AssembleTensors(
    const ModelConfig& config, std::map<std::string, SourceTensor> tensors,
    const std::string& source);

// "[64, 172]"
std::string ShapeText(const std::vector<uint64_t>& shape);

}  // namespace pinfer
