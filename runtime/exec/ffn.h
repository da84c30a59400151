// The FFN of one layer as a replaceable step. The executor computes everything else of a layer
// (norms, attention, residuals) and hands the FFN a batch of normalised inputs; an FfnStrategy adds
// FFN(x) to the residual stream. DenseFfn is the reference strategy (every neuron, MatMul kernels);
// the neuron-sparse CPU FFN (predictor → active rows) and the hybrid GPU/CPU FFN (hot rows on the
// GPU, cold active rows on the CPU, summed) implement the same interface and are installed per
// layer with Executor::SetFfn.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/cpu/kernels.h"
#include "runtime/model/model.h"

namespace pinfer {

// Scratch for FFN strategies, owned by the session and sized for its batch capacity (so that
// strategies hold no per-session state and one strategy serves every session).
struct FfnWorkspace {
  int64_t capacity = 0;            // tokens per batch
  std::vector<float> gate;         // [capacity, n_ff]: gate_i·x, before the activation
  std::vector<float> up;           // [capacity, n_ff]: up_i·x
  std::vector<float> activations;  // [capacity, n_ff]: a[t, i] = act(gate_i·x_t)·(up_i·x_t)
};

struct FfnCall {
  int64_t layer = 0;
  int64_t n = 0;                 // tokens in the batch (<= workspace->capacity)
  int64_t pos0 = 0;              // position of the first token in its sequence
  const float* input = nullptr;  // [n, dim]: after ffn_norm and the norm activation
  float* output = nullptr;       // [n, dim]: the residual stream; the FFN ADDS its result here
  FfnWorkspace* workspace = nullptr;
  // An observer wants the activation vector: the strategy must leave all of a[n, n_ff] in
  // workspace->activations and the gate products in workspace->gate (a strategy that cannot
  // returns FailedPrecondition).
  bool need_activations = false;
};

struct FfnCallStats {
  uint64_t weight_bytes = 0;  // bytes of FFN weights read by this call
};

class FfnStrategy {
 public:
  virtual ~FfnStrategy() = default;
  virtual std::string_view name() const = 0;
  // Computes output += FFN(input) for the call's layer. One call at a time (kernels use every
  // thread); implementations may keep statistics between calls.
  virtual absl::StatusOr<FfnCallStats> Forward(const FfnCall& call) = 0;
};

// Every neuron: gate and up [n_ff, dim] by MatMul, the activation, then the down projection by the
// transposed-accumulate kernel over ffn_down_t. Always fills workspace->gate, up and activations.
class DenseFfn : public FfnStrategy {
 public:
  explicit DenseFfn(const Model& model) : model_(model) {}
  std::string_view name() const override { return "dense"; }
  absl::StatusOr<FfnCallStats> Forward(const FfnCall& call) override;

 private:
  const Model& model_;
};

// The kernel's activation selector for a model activation (the kernels do not depend on the model
// library).
cpu::FfnActivation ToKernelActivation(ActivationKind kind);

}  // namespace pinfer
