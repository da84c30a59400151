#include "runtime/app/placement_setup.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/app/sibling_tool.h"
#include "runtime/common/cli_common.h"
#include "runtime/exec/cpu_backend.h"
#include "runtime/exec/cuda_backend.h"
#include "runtime/exec/cuda_ffn_part.h"
#include "runtime/model/activation_profile.h"
#include "runtime/model/firing_thresholds.h"
#include "runtime/model/placement_plan.h"
#include "runtime/model/predictor_weights.h"

namespace pinfer {
namespace {

namespace fs = std::filesystem;

constexpr char kNoPlan[] = "none";

// "dir/model.pi" -> "dir/model.<suffix>.pi".
std::string Beside(const std::string& model_path, const std::string& suffix) {
  std::string base = model_path;
  if (base.ends_with(".pi")) base.resize(base.size() - 3);
  return absl::StrCat(base, ".", suffix, ".pi");
}

// Runs pi-place to write `output`; its report goes nowhere, its error line into the status.
absl::Status RunPiPlace(const std::string& pi_place, const std::string& model_path,
                        const std::string& profile_path, uint64_t budget_bytes,
                        const std::string& output) {
  return RunSiblingTool({pi_place, "-m", model_path, "--profile", profile_path, "--vram",
                         absl::StrCat(budget_bytes), "-o", output, "-q"},
                        {.purpose = "--vram-budget"});
}

// The plan for --vram-budget: the cached one beside the model when it fits this model, else a new
// one solved by pi-place.
absl::StatusOr<std::string> PlanForBudget(const std::string& budget_text, const Model& model,
                                          std::vector<std::string>& notes) {
  absl::StatusOr<uint64_t> budget = ParseByteSize(budget_text);
  if (!budget.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--vram-budget: ", budget.status().message()));
  }
  const std::string path = CachedPlanPath(model.path(), *budget);
  std::error_code ec;
  if (fs::exists(path, ec)) {
    if (PlacementPlan::ReadFor(path, model).ok()) {
      notes.push_back(absl::StrCat("--vram-budget ", budget_text, ": reusing the plan ", path));
      return path;
    }
    notes.push_back(absl::StrCat("--vram-budget ", budget_text, ": ", path,
                                 " does not fit this model, solving it again"));
  }
  const std::string profile = DefaultProfilePath(model.path());
  if (!fs::exists(profile, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--vram-budget: no activation profile ", profile, " beside the model (run pi-profile -m ",
        model.path(), " --dataset TEXT first)"));
  }
  absl::StatusOr<std::string> pi_place = FindPiPlace();
  if (!pi_place.ok()) return pi_place.status();
  if (absl::Status s = RunPiPlace(*pi_place, model.path(), profile, *budget, path); !s.ok()) {
    return s;
  }
  notes.push_back(absl::StrCat("--vram-budget ", budget_text, ": solved the placement with ",
                               *pi_place, " into ", path));
  return path;
}

}  // namespace

void AddPlacementFlags(CLI::App& app, PlacementFlags& flags) {
  app.add_option("--plan", flags.plan_path,
                 "placement plan from pi-place (default: model.plan.pi beside the model if it "
                 "exists and a GPU is present; 'none': no plan)");
  app.add_option("--vram-budget", flags.vram_budget,
                 "without --plan: use model.plan-<budget>.pi, solving it with pi-place from "
                 "model.profile.pi first if needed (e.g. 8G)");
  app.add_option("--gpu-backend", flags.gpu_backend,
                 "where the plan's GPU part runs: auto (CUDA if a GPU is present, else the CPU), "
                 "cuda, or cpu")
      ->capture_default_str();
  app.add_option("--n-gpu-layers,--gpu-layers", flags.n_gpu_layers,
                 "-ngl N, as llama.cpp: the last N layers whole on the GPU (attention, KV cache, "
                 "every FFN neuron), and the output layer too when N exceeds the layer count; "
                 "instead of a plan");
}

std::string SpellLlamaCppFlag(const std::string& arg) {
  return arg == "-ngl" ? std::string("--n-gpu-layers") : arg;
}

PlacementPlan LayerOffloadPlan(const Model& model, int n_gpu_layers) {
  const ModelConfig& c = model.config();
  const int64_t L = c.n_layers;
  // llama.cpp's i_gpu_start: the layers [L - N, L) go to the GPU; the output layer is the
  // (L + 1)-th, offloaded when N > L.
  const int64_t first = std::max<int64_t>(0, L - n_gpu_layers);
  PlacementPlan plan;
  plan.model_digest = model.file().ContentDigestHex();
  plan.n_layers = L;
  plan.n_ff = c.n_ff;
  plan.group_size = 1;
  plan.objective = "layers";
  plan.hardware = "none";
  plan.solver = absl::StrCat("-ngl ", n_gpu_layers);
  plan.attention_on_gpu.assign(static_cast<size_t>(L), 0);
  plan.predictor_on_gpu.assign(static_cast<size_t>(L), 0);  // whole layers: dense, as llama.cpp
  plan.min_share_neurons.assign(static_cast<size_t>(L), 0);
  plan.ffn_gpu_coverage.assign(static_cast<size_t>(L), 0.0f);
  plan.ffn_gpu_neurons.resize(static_cast<size_t>(L));
  for (int64_t l = first; l < L; ++l) {
    const size_t i = static_cast<size_t>(l);
    plan.attention_on_gpu[i] = 1;
    plan.ffn_gpu_coverage[i] = 1.0f;
    for (int32_t n = 0; n < c.n_ff; ++n) plan.ffn_gpu_neurons[i].push_back(n);
    const LayerWeights& w = model.layer(l);
    plan.bytes.attention += w.AttentionBytes();
    plan.bytes.ffn += w.FfnBytes();
    plan.bytes.norms += 2 * static_cast<uint64_t>(c.dim) * sizeof(float);
  }
  if (n_gpu_layers > L) {
    plan.gpu_tensors.push_back(c.tied_embeddings ? "token_embd" : "output");
    plan.bytes.output = static_cast<uint64_t>(model.output().rows) * model.output().row_bytes;
    plan.bytes.norms += static_cast<uint64_t>(c.dim) * sizeof(float);
  }
  plan.expected_coverage = static_cast<double>(L - first) / static_cast<double>(std::max<int64_t>(1, L));
  return plan;
}

absl::Status ValidatePlacementFlags(const PlacementFlags& flags) {
  if (flags.n_gpu_layers != -1) {
    if (flags.n_gpu_layers < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("-ngl must be 0 or more layers, got ", flags.n_gpu_layers));
    }
    if ((!flags.plan_path.empty() && flags.plan_path != kNoPlan) || !flags.vram_budget.empty()) {
      return absl::InvalidArgumentError(
          "-ngl builds its own plan of whole layers: it cannot be combined with --plan or "
          "--vram-budget");
    }
  }
  if (flags.gpu_backend != "auto" && flags.gpu_backend != "cuda" && flags.gpu_backend != "cpu") {
    return absl::InvalidArgumentError(
        absl::StrCat("--gpu-backend must be auto, cuda or cpu, not '", flags.gpu_backend, "'"));
  }
  if (!flags.vram_budget.empty()) {
    if (!flags.plan_path.empty()) {
      return absl::InvalidArgumentError("--plan and --vram-budget cannot be combined");
    }
    absl::StatusOr<uint64_t> budget = ParseByteSize(flags.vram_budget);
    if (!budget.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--vram-budget: ", budget.status().message()));
    }
    if (*budget == 0) return absl::InvalidArgumentError("--vram-budget must be positive");
  }
  return absl::OkStatus();
}

std::string CachedPlanPath(const std::string& model_path, uint64_t budget_bytes) {
  std::string size = absl::StrCat(budget_bytes);
  for (auto [shift, unit] :
       {std::pair{40, "T"}, std::pair{30, "G"}, std::pair{20, "M"}, std::pair{10, "K"}}) {
    const uint64_t scale = uint64_t{1} << shift;
    if (budget_bytes >= scale && budget_bytes % scale == 0) {
      size = absl::StrCat(budget_bytes / scale, unit);
      break;
    }
  }
  return Beside(model_path, absl::StrCat("plan-", size));
}

absl::StatusOr<std::string> FindPiPlace() { return FindSiblingTool("pi-place", "--vram-budget"); }

absl::StatusOr<std::optional<std::string>> ResolvePlanPath(const PlacementFlags& flags,
                                                           const Model& model,
                                                           std::vector<std::string>& notes) {
  if (absl::Status s = ValidatePlacementFlags(flags); !s.ok()) return s;
  // -ngl's plan is built in memory (LayerOffloadPlan), never read from a file.
  if (flags.plan_path == kNoPlan || flags.n_gpu_layers >= 0) return std::nullopt;
  if (!flags.vram_budget.empty()) {
    absl::StatusOr<std::string> path = PlanForBudget(flags.vram_budget, model, notes);
    if (!path.ok()) return path.status();
    return *path;
  }
  if (!flags.plan_path.empty()) return flags.plan_path;
  const std::string beside = Beside(model.path(), "plan");
  std::error_code ec;
  if (!fs::exists(beside, ec)) return std::nullopt;
  // A plan only pays off with a GPU: without one, the plan beside the model (pi-place writes it
  // there by default) must not quietly turn every later run into a hybrid one on the CPU.
  if (absl::Status gpu = CheckCudaAvailable(); !gpu.ok()) {
    notes.push_back(absl::StrCat("note: ignoring the plan ", beside, " beside the model: ",
                                 gpu.message(), "; --plan ", beside, " uses it anyway"));
    return std::nullopt;
  }
  return beside;
}

std::string DeviceMemoryWarning(std::optional<uint64_t> free_bytes, uint64_t budget_bytes,
                                const std::string& plan_path) {
  if (!free_bytes || *free_bytes >= budget_bytes) return "";
  return absl::StrCat("warning: the GPU has ", FormatBytes(*free_bytes),
                      " free, less than the plan's budget of ", FormatBytes(budget_bytes), " (",
                      plan_path, "): allocating it may fail");
}

absl::StatusOr<GpuSide> SetUpGpuSide(const PlacementFlags& flags, const Model& model,
                                     const PlacementPlan& plan, const std::string& plan_path,
                                     std::shared_ptr<const PredictorWeights> predictor,
                                     std::shared_ptr<const FiringThresholds> firing) {
  GpuSide side;
  const ModelConfig& c = model.config();
  const int64_t gpu_neurons = plan.GpuNeuronCount();
  const int64_t total = c.n_layers * c.n_ff;
  int64_t attention_layers = 0;
  for (uint8_t on : plan.attention_on_gpu) attention_layers += on != 0 ? 1 : 0;
  const bool classifier = plan.ClassifierOnGpu(c.tied_embeddings);
  side.notes.push_back(absl::StrFormat(
      "plan %s: %d of %d FFN neurons (%.1f%%) in the GPU part, expected hot coverage %.1f%%; "
      "attention of %d of %d layers and %s on the GPU",
      plan_path, gpu_neurons, total, 100.0 * gpu_neurons / std::max<int64_t>(1, total),
      100.0 * plan.expected_coverage, attention_layers, c.n_layers,
      classifier ? "the classifier" : "not the classifier"));
  if (!plan.AnythingOnGpu(c.tied_embeddings)) return side;
  const absl::Status cuda = flags.gpu_backend == "cpu" ? absl::OkStatus() : CheckCudaAvailable();
  if (flags.gpu_backend == "cuda" && !cuda.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("--gpu-backend cuda: no GPU for the plan's GPU part: ", cuda.message()));
  }
  const bool on_cuda = flags.gpu_backend != "cpu" && cuda.ok();
  std::string where;
  if (on_cuda) {
    absl::StatusOr<std::shared_ptr<Backend>> device = CreateCudaBackend();
    if (!device.ok()) return device.status();
    side.placement.device = *device;
    side.memory_warning = DeviceMemoryWarning(side.placement.device->FreeMemoryBytes(),
                                              plan.budget_bytes, plan_path);
    absl::StatusOr<std::shared_ptr<CudaFfnContext>> context =
        CreateCudaFfnContext(model, side.placement.device);
    if (!context.ok()) return context.status();
    side.factory = [context = *context, &model, predictor, firing, on_gpu = plan.predictor_on_gpu](
                       int64_t layer, std::vector<int32_t> neurons) {
      const bool here = on_gpu[static_cast<size_t>(layer)] != 0;
      const float threshold = firing != nullptr && firing->calibrated()
                                  ? firing->per_layer[static_cast<size_t>(layer)]
                                  : -1.0f;
      return CreateCudaPartBackend(context, model, layer, std::move(neurons),
                                   here ? predictor : nullptr, threshold);
    };
    absl::StatusOr<std::string> device_name = DescribeCudaDevice();
    where = absl::StrCat("CUDA on ", device_name.ok() ? *device_name : "the current device");
  } else {
    // The CPU stands in for the device: its own memory, the same copies and merges.
    side.placement.device = std::shared_ptr<Backend>(CpuBackend::StandIn());
    side.factory = StandInPartFactory(model, side.placement.device, firing);
    where = flags.gpu_backend == "cpu" ? std::string("the CPU (--gpu-backend cpu)")
                                       : absl::StrCat("the CPU (no GPU: ", cuda.message(), ")");
  }
  side.placement.attention_on_device = plan.attention_on_gpu;
  side.placement.classifier_on_device = classifier;
  side.notes.push_back(absl::StrCat(
      "the GPU part runs on ", where,
      predictor == nullptr ? "; no predictor: every neuron is computed" : ""));
  return side;
}

}  // namespace pinfer
