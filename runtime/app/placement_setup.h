// The placement flags of every program that runs a model (pi-run, pi-server, through
// runtime_flags.h): which plan splits each FFN layer between the GPU and the CPU, and where the
// plan's GPU parts run (the hybrid layers are built by runtime/exec/ffn_builder.h).
//
//   --plan FILE          a plan written by pi-place (default: model.plan.pi beside the model, when
//                        it exists and a GPU is present, else a note says it is ignored; --plan
//                        none runs without one)
//   --vram-budget 8G     no plan given: use model.plan-8G.pi beside the model, solving it first
//                        with the pi-place program (found beside this program, or on PATH) from the
//                        profile beside the model (model.profile.pi) when it is missing or was made
//                        for another model. The runtime never links the solver (runtime/ never
//                        depends on tools/), so it runs it as a subprocess.
//
//   --gpu-backend auto   where the plan's GPU parts run: auto (CUDA when this build has the backend
//                        and a device is present, else the CPU, with a note), cuda (an error
//                        without a GPU), cpu (the CPU stands in: tests, comparisons)
//
// A plan is checked against the model (digest, layers, FFN width).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/ffn_builder.h"
#include "runtime/model/firing_thresholds.h"
#include "runtime/model/model.h"
#include "runtime/model/placement_plan.h"
#include "runtime/model/predictor_weights.h"

namespace CLI {
class App;
}  // namespace CLI

namespace pinfer {

struct PlacementFlags {
  std::string plan_path;             // --plan; "none": no plan
  std::string vram_budget;           // --vram-budget
  std::string gpu_backend = "auto";  // --gpu-backend: auto | cuda | cpu
  int n_gpu_layers = -1;             // -ngl / --n-gpu-layers; -1: not given
};

// Registers --plan, --vram-budget, --gpu-backend and --n-gpu-layers (-ngl: programs spell it
// through SpellLlamaCppFlag, CLI11 having no multi-letter single-dash flags).
void AddPlacementFlags(CLI::App& app, PlacementFlags& flags);
// Checks what does not depend on the model (the budget's syntax, the two flags together).
absl::Status ValidatePlacementFlags(const PlacementFlags& flags);

// -ngl N, as llama.cpp: the last min(N, n_layers) layers whole on the GPU (attention, their KV
// cache and every FFN neuron), the input embedding on the CPU, and the classifier (with the final
// norm) on the GPU when N > n_layers. An in-memory plan of no budget; its expected bytes are the
// weights (no KV, no workspace: they depend on the sessions).
PlacementPlan LayerOffloadPlan(const Model& model, int n_gpu_layers);
// llama.cpp's multi-letter single-dash flags of the placement, as their long forms ("-ngl" ->
// "--n-gpu-layers"); any other argument as it is.
std::string SpellLlamaCppFlag(const std::string& arg);

// The plan's path from the flags: --plan, the cached plan of --vram-budget (solved first when
// missing or made for another model; `notes` says which), else model.plan.pi beside the model
// when it exists and a GPU is present (without one, a note in `notes` says it is ignored).
// Nothing with --plan none or when no plan applies.
absl::StatusOr<std::optional<std::string>> ResolvePlanPath(const PlacementFlags& flags,
                                                           const Model& model,
                                                           std::vector<std::string>& notes);

// Where the plan's GPU parts run (--gpu-backend), decided here once: the device backend (CUDA, or
// the CPU stand-in: backend.h) with the plan's dense placement (each layer's attention and KV
// cache, the classifier) for Executor::SetPlacement, and the factory of the FFN's GPU parts over
// the same device. The CUDA parts of layers whose plan says predictor_on_gpu select with
// `predictor` on the device; a calibrated model's thresholds (`firing`) apply on the GPU too.
struct GpuSide {
  GpuBackendFactory factory;       // null: nothing of the FFN on the GPU
  DensePlacement placement;        // placement.device null: nothing on the GPU
  std::vector<std::string> notes;  // lines for the program's log (no prefix, no newline)
  // Non-empty when the device has less free memory than the plan's budget: the line to print
  // before anything is allocated there.
  std::string memory_warning;
};
absl::StatusOr<GpuSide> SetUpGpuSide(const PlacementFlags& flags, const Model& model,
                                     const PlacementPlan& plan, const std::string& plan_path,
                                     std::shared_ptr<const PredictorWeights> predictor,
                                     std::shared_ptr<const FiringThresholds> firing);

// The line said before allocating when the device's free memory is below the plan's budget;
// empty when it is not (or nothing is known of it).
std::string DeviceMemoryWarning(std::optional<uint64_t> free_bytes, uint64_t budget_bytes,
                                const std::string& plan_path);

// "dir/model.pi" + 8 GiB -> "dir/model.plan-8G.pi" (the budget in the largest whole binary unit).
std::string CachedPlanPath(const std::string& model_path, uint64_t budget_bytes);

// The pi-place program: beside the running executable (/proc/self/exe), else on PATH.
absl::StatusOr<std::string> FindPiPlace();

}  // namespace pinfer
