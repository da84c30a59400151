#include "runtime/exec/ffn.h"

#include "absl/strings/str_cat.h"

namespace pinfer {

cpu::FfnActivation ToKernelActivation(ActivationKind kind) {
  switch (kind) {
    case ActivationKind::kSilu:
      return cpu::FfnActivation::kSilu;
    case ActivationKind::kGelu:
      return cpu::FfnActivation::kGelu;
    case ActivationKind::kRelu:
      return cpu::FfnActivation::kRelu;
    case ActivationKind::kRelu2:
      return cpu::FfnActivation::kRelu2;
    case ActivationKind::kDRelu:
      return cpu::FfnActivation::kDRelu;
    case ActivationKind::kFatRelu:
      return cpu::FfnActivation::kFatRelu;
    case ActivationKind::kShiftedRelu:
      return cpu::FfnActivation::kShiftedRelu;
    case ActivationKind::kNone:
      break;  // rejected by ModelConfig::Validate
  }
  return cpu::FfnActivation::kSilu;
}

absl::StatusOr<FfnCallStats> DenseFfn::Forward(const FfnCall& call) {
  const ModelConfig& config = model_.config();
  const LayerWeights& w = model_.layer(call.layer);
  FfnWorkspace& ws = *call.workspace;
  if (call.n > ws.capacity) {
    return absl::InternalError(absl::StrCat(
        "FFN batch of ", call.n, " tokens exceeds the workspace capacity ", ws.capacity));
  }
  cpu::MatMul(w.ffn_gate, call.input, call.n, ws.gate.data());
  cpu::MatMul(w.ffn_up, call.input, call.n, ws.up.data());
  cpu::FfnCombine(ToKernelActivation(config.ffn_act.kind), config.ffn_act.param, ws.gate.data(),
                  ws.up.data(), call.n * config.n_ff, ws.activations.data());
  cpu::MatMulTransposedAccumulate(w.ffn_down_t, ws.activations.data(), call.n, call.output);
  return FfnCallStats{w.FfnBytes()};
}

}  // namespace pinfer
