// The placement flags of every program that runs a model (pi-run, pi-server, through
// runtime_flags.h): which plan splits each FFN layer between the GPU and the CPU, and the hybrid
// FFN (runtime/exec/hybrid_ffn.h) that executes it.
//
//   --plan FILE          a plan written by pi-place (default: model.plan.pi beside the model, when
//                        it exists; --plan none runs without one)
//   --vram-budget 8G     no plan given: use model.plan-8G.pi beside the model, solving it first
//                        with the pi-place program (found beside this program, or on PATH) from the
//                        profile beside the model (model.profile.pi) when it is missing or was made
//                        for another model. The runtime never links the solver (DESIGN.md: runtime/
//                        never depends on tools/), so it runs it as a subprocess.
//
//   --gpu-backend auto   where the plan's GPU parts run: auto (CUDA when this build has the backend
//                        and a device is present, else the CPU, with a note), cuda (an error
//                        without a GPU), cpu (the CPU stands in: tests, comparisons)
//
// A plan is checked against the model (digest, layers, FFN width).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/ffn_part.h"
#include "runtime/exec/hybrid_ffn.h"
#include "runtime/model/model.h"

namespace CLI {
class App;
}  // namespace CLI

namespace pinfer {

struct PlacementFlags {
  std::string plan_path;             // --plan; "none": no plan
  std::string vram_budget;           // --vram-budget
  std::string gpu_backend = "auto";  // --gpu-backend: auto | cuda | cpu
};

// Registers --plan, --vram-budget and --gpu-backend.
void AddPlacementFlags(CLI::App& app, PlacementFlags& flags);
// Checks what does not depend on the model (the budget's syntax, the two flags together).
absl::Status ValidatePlacementFlags(const PlacementFlags& flags);

// What SetUpPlacement installed.
struct PlacementSetup {
  std::shared_ptr<HybridFfn> hybrid;  // null: no plan applies, the executor is unchanged
  std::string plan_path;
  std::vector<std::string> notes;  // lines for the program's log (no prefix, no newline)
};

// Resolves the plan from the flags and, when there is one, installs a HybridFfn on every layer of
// `executor`. `predictor` (checked against the model by its reader; null: model.predictor.pi
// beside the model if it exists, else none and every neuron is computed) chooses the active
// neurons: on the CPU for the CPU parts, and on the GPU for the CUDA parts of layers whose plan
// says predictor_on_gpu. `firing` (null: none): a calibrated model's thresholds (as loaded for the
// sparse FFN), which the CPU parts apply as the sparse FFN does; the CUDA parts do not. Errors name
// the flag or the file and the reason, on one line.
absl::StatusOr<PlacementSetup> SetUpPlacement(
    const PlacementFlags& flags, const Model& model, Executor& executor,
    std::shared_ptr<const PredictorWeights> predictor,
    std::shared_ptr<const FiringThresholds> firing = nullptr);

// "dir/model.pi" + 8 GiB -> "dir/model.plan-8G.pi" (the budget in the largest whole binary unit).
std::string CachedPlanPath(const std::string& model_path, uint64_t budget_bytes);

// The pi-place program: beside the running executable (/proc/self/exe), else on PATH.
absl::StatusOr<std::string> FindPiPlace();

// One line: GPU and CPU time per token, the wait, the selector, the hot coverage achieved.
std::string FormatHybridStats(const HybridFfnStats& stats, std::string_view gpu_backend);

}  // namespace pinfer
