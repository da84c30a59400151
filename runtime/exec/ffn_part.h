// One part of a layer's FFN: a fixed subset of its neurons (a "part" of the placement plan's
// partition, e.g. the GPU's hot neurons or the CPU's rest) computed by one backend, and the active
// sets (neuron_selector.h) that say which neurons of a token to compute at all.
//
// For the part's neurons P and a token's active set A (every neuron when there is no selector):
//   partial(x) = Σ_{i ∈ P ∩ A} act(gate_i·x, up_i·x) · down_i
// Parts whose neuron sets partition [0, n_ff) add up to the FFN over A; with A = everything, to the
// dense FFN (up to the order of the float additions).
//
// A part works in two steps so that two backends overlap without extra threads: Begin starts the
// work (a CPU part does all of it on the calling thread's OpenMP kernels; a GPU part only enqueues
// it on its stream) and Finish completes it, adding the part's partial sum to the residual stream.
// HybridFfn (hybrid_ffn.h) calls gpu.Begin, cpu.Begin, gpu.Finish, cpu.Finish: the CPU computes
// while the GPU does, and the layer waits once, for the GPU.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/exec/ffn.h"
#include "runtime/exec/neuron_selector.h"
#include "runtime/model/model.h"

namespace pinfer {

struct FfnPartCall {
  int64_t layer = 0;
  int64_t n = 0;                            // tokens
  const float* input = nullptr;             // [n, dim] host memory
  float* output = nullptr;                  // [n, dim] the residual stream: Finish adds here
  const SelectedNeurons* active = nullptr;  // null: every neuron of the part
  FfnWorkspace* workspace = nullptr;        // the session's scratch, for parts computing on the CPU
};

struct FfnPartStats {
  int64_t computed_neurons = 0;  // Σ over tokens of the part's neurons computed
  uint64_t weight_bytes = 0;     // weight bytes read
  double seconds = 0;            // time of the part's own work (GPU: between its events)
};

class FfnPart {
 public:
  virtual ~FfnPart() = default;
  virtual std::string_view backend() const = 0;  // "cpu", "cuda"
  // The part's neurons, ascending.
  virtual std::span<const int32_t> neurons() const = 0;
  virtual absl::Status Begin(const FfnPartCall& call) = 0;
  // Completes the call begun last (same `call`): output += the part's partial sum.
  virtual absl::StatusOr<FfnPartStats> Finish(const FfnPartCall& call) = 0;
};

// The part on the CPU over the mapped weights, with the gather kernels (cpu::GatherMatMul...).
// Begin computes everything. `separate_partial` false: it accumulates straight into the residual
// (the CPU part of a hybrid layer); true: into a buffer of its own that Finish adds (a CPU stand-in
// for the GPU part, which exercises the merge exactly as the GPU part does). With `firing`
// calibrated (silu/gelu models), the computed neurons that do not fire are zeroed as SparseFfn
// does (FiringThresholds::Apply); null or exact-zero thresholds: the activations as computed.
class CpuFfnPart : public FfnPart {
 public:
  CpuFfnPart(const Model& model, int64_t layer, std::vector<int32_t> neurons, bool separate_partial,
             std::shared_ptr<const FiringThresholds> firing = nullptr);
  std::string_view backend() const override { return "cpu"; }
  std::span<const int32_t> neurons() const override { return neurons_; }
  absl::Status Begin(const FfnPartCall& call) override;
  absl::StatusOr<FfnPartStats> Finish(const FfnPartCall& call) override;

 private:
  // Runs the FFN over `rows` (count neuron ids) for the n tokens of x, adding into y.
  void Compute(const int32_t* rows, int64_t count, const float* x, int64_t n, float* y,
               FfnWorkspace& ws);

  const Model& model_;
  int64_t layer_;
  std::vector<int32_t> neurons_;
  std::vector<uint8_t> member_;  // [n_ff]: 1 for the part's neurons
  bool separate_partial_;
  std::shared_ptr<const FiringThresholds> firing_;  // null: no thresholds
  std::vector<float> partial_;                      // [n, dim] when separate_partial_
  std::vector<int32_t> rows_;                       // one token's active neurons of the part
  FfnPartStats pending_;
};

// Intersects a token's ascending active ids with a part's membership mask, into `rows`.
void ActiveRowsOfPart(std::span<const int32_t> active, const std::vector<uint8_t>& member,
                      std::vector<int32_t>& rows);

}  // namespace pinfer
