// libFuzzer target: the placement plan reader (PlacementPlan::Read and ReadFor against the fixed
// model). An accepted plan must keep what the hybrid executor relies on: its GPU bytes within the
// budget part by part (not only as a sum that may wrap), neuron lists sorted and inside n_ff.
// Inputs are .pi files with valid checksums (pi_custom_mutator.cc).
#include <cstddef>
#include <cstdint>

#include "runtime/model/placement_plan.h"
#include "tests/fuzz/fixed_model.h"
#include "tests/fuzz/fuzz_checks.h"
#include "tests/fuzz/fuzz_file.h"

namespace pinfer::fuzz {
namespace {

void CheckPlan(const PlacementPlan& p) {
  Require(p.Validate().ok(), "Read returned a plan that fails Validate()");
  const PlanBytes& b = p.bytes;
  for (uint64_t part : {b.workspace, b.norms, b.attention, b.kv, b.ffn, b.predictor, b.output}) {
    Require(part <= p.budget_bytes, "a part of the plan's GPU bytes exceeds the budget");
  }
  Require(b.total() >= b.ffn && b.total() >= b.kv, "the plan's byte total wrapped around");
  int64_t neurons = 0;
  for (const std::vector<int32_t>& layer : p.ffn_gpu_neurons) {
    for (int32_t id : layer) Require(id >= 0 && id < p.n_ff, "a GPU neuron is outside n_ff");
    neurons += static_cast<int64_t>(layer.size());
  }
  Require(neurons == p.GpuNeuronCount(), "GpuNeuronCount disagrees with the lists");
  (void)p.TensorOnGpu("output.weight");
}

}  // namespace
}  // namespace pinfer::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pinfer;
  const Model& model = fuzz::FixedModel();
  const std::string path = fuzz::WriteScratchFile("model.plan.pi", {data, size});
  absl::StatusOr<PlacementPlan> read = PlacementPlan::Read(path);
  if (read.ok()) fuzz::CheckPlan(*read);
  absl::StatusOr<PlacementPlan> plan = PlacementPlan::ReadFor(path, model);
  if (!plan.ok()) return fuzz::Rejected(plan.status());
  fuzz::Require(plan->n_layers == model.n_layers() && plan->n_ff == model.config().n_ff,
                "ReadFor accepted a plan of another shape");
  return 0;
}
