#include "runtime/app/runtime_flags.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <utility>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/app/artifacts.h"
#include "runtime/common/cli_common.h"
#include "runtime/cpu/kernels.h"
#include "runtime/exec/ffn_builder.h"
#include "runtime/exec/ffn_cost_model.h"
#include "runtime/exec/ffn_report.h"
#include "runtime/exec/neuron_selector.h"

namespace pinfer {

void AddRuntimeFlags(CLI::App& app, RuntimeFlags& flags) {
  app.add_option("-m,--model", flags.model_path,
                 "model: a .pi, or a GGUF, llama2.c checkpoint (with --tokenizer) or HuggingFace "
                 "directory, converted once into a cached .pi beside it (or in "
                 "$XDG_CACHE_HOME/pinfer)")
      ->required();
  app.add_option("--tokenizer", flags.source.tokenizer_path,
                 "a llama2.c checkpoint's tokenizer.bin (-m of a llama2.c model)");
  app.add_option("--dtype", flags.source.dtype,
                 "-m not a .pi: the dtype of its cached conversion's weights: f32, f16, bf16, q8_0 "
                 "or q4_0 (default: as the source)");
  app.add_option("-t,--threads", flags.threads,
                 "CPU threads (-1: all; at most the hardware's thread count)")
      ->capture_default_str();
  app.add_option("-c,--ctx-size", flags.context,
                 "context length (0: the model's, shortened to the memory available)")
      ->capture_default_str();
  app.add_option("-b,--batch-size", flags.batch_size, "prompt tokens per forward pass")
      ->capture_default_str();
  app.add_option("--cache-type", flags.cache_type,
                 "what the KV cache stores: f16 (half the bytes of f32, perplexity within 0.1%), "
                 "f32, or q8_0 (8-bit blocks of 32: about a quarter of f32's bytes)")
      ->capture_default_str();
  app.add_flag_callback(
      "--no-populate", [&flags] { flags.populate = false; },
      "do not pre-read the model into memory at load (first tokens then include disk reads)");
  AddSparseFlags(app, flags.sparse);
  AddPlacementFlags(app, flags.placement);
}

namespace {

// --dense means every neuron on the CPU, which a plan contradicts.
absl::Status ValidateSparseWithPlacement(const RuntimeFlags& flags) {
  const bool plan_asked =
      (!flags.placement.plan_path.empty() && flags.placement.plan_path != "none") ||
      !flags.placement.vram_budget.empty() || flags.placement.n_gpu_layers > 0;
  if (flags.sparse.dense && plan_asked) {
    return absl::InvalidArgumentError(
        "--dense runs every neuron on the CPU: it cannot be combined with --plan, --vram-budget "
        "or -ngl");
  }
  return absl::OkStatus();
}

// The FFN the artifacts call for: the selector, the thresholds, the cost model (measured once,
// when a CPU part selects) and the plan's GPU side. `notes` says how it will execute.
// `placement` receives the plan's dense placement (nothing without a plan).
absl::StatusOr<FfnSetup> MakeFfnSetup(const RuntimeFlags& flags, const Model& model,
                                      const RuntimeArtifacts& a, std::vector<std::string>& notes,
                                      DensePlacement* placement, std::string_view log_prefix) {
  FfnSetup setup;
  setup.firing = a.firing;
  setup.check = flags.sparse.check;
  for (const std::string& note : a.notes) notes.push_back(note);
  if (a.oracle) {
    const FiringThresholds exact{model.config().ffn_act, {}};
    setup.selector = std::make_shared<OracleSelector>(model, a.firing ? *a.firing : exact);
    notes.push_back("ffn: active neurons from the true activations (--oracle-sparse)");
  } else if (a.predictor != nullptr) {
    setup.selector = std::make_shared<PredictorSelector>(a.predictor);
    if (!a.auto_select) {
      notes.push_back(absl::StrCat("ffn: active neurons from the predictor ", a.predictor_path));
    }
  }
  if (a.auto_select) {
    setup.auto_select = true;
    notes.push_back(absl::StrCat(
        "ffn: auto selection: per layer, for decode and prompts apart, dense, exact gate-first",
        a.predictor != nullptr ? absl::StrCat(" or the predictor ", a.predictor_path) : "",
        " by measured cost (--dense, --sparse-mode exact|predictor force one)"));
    // The predictor's report on its validation samples: what it selects and what fires.
    if (a.predictor != nullptr) {
      for (const PredictorLayer& layer : a.predictor->layers) {
        AutoDensities prior;
        if (layer.report.true_density > 0) prior.fired = layer.report.true_density;
        if (layer.report.predicted_density > 0) prior.predicted = layer.report.predicted_density;
        setup.auto_priors.push_back(prior);
      }
    }
  }
  if (a.exact) {
    setup.exact = true;
    notes.push_back(
        "ffn: exact gate-first selection (every gate row, then the up and down rows of the "
        "neurons that fire)");
  }
  if (setup.selector != nullptr || setup.auto_select) {
    if (flags.sparse.crossover >= 0.0) {
      setup.cost =
          std::make_shared<const FfnCostModel>(FfnCostModel::Fixed(flags.sparse.crossover));
    } else {
      absl::StatusOr<FfnCostModel> cost = MeasureFfnCostModel(
          model, setup.auto_select && !a.oracle ? a.predictor.get() : nullptr);
      if (!cost.ok()) return cost.status();
      setup.cost = std::make_shared<const FfnCostModel>(*std::move(cost));
    }
  }
  if (a.plan) {
    absl::StatusOr<GpuSide> gpu =
        SetUpGpuSide(flags.placement, model, *a.plan, a.plan_path, a.predictor, a.firing);
    if (!gpu.ok()) return gpu.status();
    setup.gpu_backend = std::move(gpu->factory);
    setup.gpu_neurons = a.plan->ffn_gpu_neurons;
    *placement = std::move(gpu->placement);
    // Said before anything is allocated on the device, so that an out-of-memory error that
    // follows has its reason above it.
    if (!gpu->memory_warning.empty()) {
      std::fprintf(stderr, "%.*s%s\n", static_cast<int>(log_prefix.size()), log_prefix.data(),
                   gpu->memory_warning.c_str());
    }
    for (const std::string& note : gpu->notes) notes.push_back(note);
  }
  return setup;
}

}  // namespace

absl::Status ValidateRuntimeFlags(const RuntimeFlags& flags) {
  if (flags.model_path.empty()) return absl::InvalidArgumentError("-m MODEL is required");
  if (flags.threads == 0 || flags.threads < -1) {
    return absl::InvalidArgumentError(
        absl::StrCat("-t must be 1 or more threads (-1: all), got ", flags.threads));
  }
  if (flags.context < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("-c must be a positive context length (0: the model's), got ", flags.context));
  }
  if (flags.batch_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("-b must be 1 or more tokens, got ", flags.batch_size));
  }
  if (!ParseKvCacheType(flags.cache_type).ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--cache-type must be ", kKvCacheTypeChoices,
                                                   ", not '", flags.cache_type, "'"));
  }
  if (absl::Status s = ValidateSparseFlags(flags.sparse); !s.ok()) return s;
  if (absl::Status s = ValidatePlacementFlags(flags.placement); !s.ok()) return s;
  return ValidateSparseWithPlacement(flags);
}

absl::StatusOr<LoadedRuntime> LoadRuntime(const RuntimeFlags& flags, std::string_view log_prefix) {
  if (absl::Status s = ValidateRuntimeFlags(flags); !s.ok()) return s;
  LoadedRuntime rt;
  std::string threads_warning;
  cpu::SetThreads(ThreadsToUse(flags.threads, &threads_warning));
  if (!threads_warning.empty()) rt.notes.push_back(threads_warning);

  absl::StatusOr<std::string> model_path =
      ResolveModelFile(flags.model_path, flags.source, log_prefix);
  if (!model_path.ok()) return model_path.status();
  rt.model_path = *std::move(model_path);

  const auto start = std::chrono::steady_clock::now();
  ModelLoadOptions load;
  load.populate = flags.populate;
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(rt.model_path, load);
  if (!model.ok()) return model.status();
  rt.model = *std::move(model);
  absl::StatusOr<Tokenizer> tokenizer = Tokenizer::Create(*rt.model->vocabulary());
  if (!tokenizer.ok()) return rt.model->file().Annotate(tokenizer.status());
  rt.tokenizer = std::make_unique<Tokenizer>(*std::move(tokenizer));
  ExecutorOptions exec;
  exec.batch_size = flags.batch_size;
  rt.executor = std::make_unique<Executor>(*rt.model, exec);
  absl::StatusOr<RuntimeArtifacts> artifacts =
      ResolveArtifacts(flags.sparse, flags.placement, rt.model_path, *rt.model);
  if (!artifacts.ok()) return artifacts.status();
  // -ngl: llama.cpp's layer offload as an in-memory plan of whole layers (-ngl 0: none).
  if (flags.placement.n_gpu_layers > 0) {
    artifacts->plan = LayerOffloadPlan(*rt.model, flags.placement.n_gpu_layers);
    artifacts->plan_path = absl::StrCat("-ngl ", flags.placement.n_gpu_layers);
  }
  DensePlacement placement;
  absl::StatusOr<FfnSetup> setup =
      MakeFfnSetup(flags, *rt.model, *artifacts, rt.notes, &placement, log_prefix);
  if (!setup.ok()) return setup.status();
  absl::StatusOr<std::vector<std::unique_ptr<LayerFfn>>> layers = BuildFfnLayers(*rt.model, *setup);
  if (!layers.ok()) return layers.status();
  if (absl::Status s = rt.executor->SetFfnLayers(*std::move(layers)); !s.ok()) return s;
  if (absl::Status s = rt.executor->SetPlacement(std::move(placement)); !s.ok()) return s;
  if (artifacts->plan && artifacts->plan->budget_bytes > 0 && rt.executor->device() != nullptr) {
    rt.vram_budget = artifacts->plan->budget_bytes;
    rt.plan_bytes = artifacts->plan->bytes;
  }
  rt.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return rt;
}

void LogRuntimeSummary(std::string_view log_prefix, const RuntimeFlags& flags,
                       const LoadedRuntime& rt, int64_t context_length, uint64_t kv_cache_bytes) {
  const std::string prefix(log_prefix);
  const ModelConfig& c = rt.model->config();
  std::fprintf(
      stderr,
      "%smodel %s: %s, %lld layers, dim %lld, %lld heads (%lld KV), n_ff %lld, vocab %lld, "
      "ffn %s, norm %s, %s weights (%s)\n",
      prefix.c_str(), rt.model_path.c_str(), c.architecture.c_str(),
      static_cast<long long>(c.n_layers), static_cast<long long>(c.dim),
      static_cast<long long>(c.n_heads), static_cast<long long>(c.n_kv_heads),
      static_cast<long long>(c.n_ff), static_cast<long long>(c.vocab_size),
      c.ffn_act.ToString().c_str(), c.norm_act.ToString().c_str(),
      rt.model->WeightDTypeSummary().c_str(), FormatBytes(rt.model->WeightBytes()).c_str());
  if (c.synthetic) {
    std::fprintf(stderr, "%swarning: a synthetic model (random weights): its text is noise\n",
                 prefix.c_str());
  }
  std::fprintf(stderr,
               "%sloaded in %.1f ms; context %lld (trained %lld), KV cache %s %s, %d threads, "
               "kernels %s\n",
               prefix.c_str(), rt.load_seconds * 1e3, static_cast<long long>(context_length),
               static_cast<long long>(c.context_length), flags.cache_type.c_str(),
               FormatBytes(kv_cache_bytes).c_str(), cpu::Threads(), cpu::SimdTargetName());
  // As llama.cpp warns "n_ctx > n_ctx_train": positions the model never saw in training.
  if (context_length > c.context_length) {
    std::fprintf(stderr,
                 "%swarning: n_ctx %lld > n_ctx_train %lld (-c %lld): the model was trained on "
                 "%lld positions; its text beyond them is likely to degrade\n",
                 prefix.c_str(), static_cast<long long>(context_length),
                 static_cast<long long>(c.context_length), static_cast<long long>(flags.context),
                 static_cast<long long>(c.context_length));
  }
  if (!flags.populate) {
    std::fprintf(stderr,
                 "%snote: --no-populate: the model is read from disk as its pages are first "
                 "touched, so the first tokens' timings include those reads\n",
                 prefix.c_str());
  }
  if (flags.context == 0 && context_length < c.context_length) {
    std::fprintf(stderr,
                 "%snote: the model's context of %lld tokens does not fit in the memory "
                 "available; using %lld (-c sets it)\n",
                 prefix.c_str(), static_cast<long long>(c.context_length),
                 static_cast<long long>(context_length));
  }
  for (const std::string& note : rt.notes) {
    std::fprintf(stderr, "%s%s\n", prefix.c_str(), note.c_str());
  }
  if (const std::string vram = DeviceMemoryLine(rt); !vram.empty()) {
    std::fprintf(stderr, "%s%s\n", prefix.c_str(), vram.c_str());
  }
}

std::string DeviceMemoryLine(const LoadedRuntime& rt) {
  const Backend* device = rt.executor->device();
  if (device == nullptr) return "";
  const PlanBytes used = device->used();
  std::string line = absl::StrCat("VRAM (", std::string(device->name()), "): ",
                                  FormatBytes(used.total()), " used");
  if (rt.vram_budget) absl::StrAppend(&line, " of the budget ", FormatBytes(*rt.vram_budget));
  absl::StrAppend(&line, ": ", DescribeMemory(used));
  if (rt.vram_budget) absl::StrAppend(&line, "; the plan expects ", DescribeMemory(rt.plan_bytes));
  return line;
}

void LogFfnReport(std::string_view log_prefix, const Executor& executor) {
  std::vector<std::string> lines = FfnReportLines(executor);
  if (executor.device() != nullptr) {
    const Executor::TransferCounts t = executor.transfers();
    lines.push_back(absl::StrFormat(
        "device (%s): %d uploads and %d downloads of hidden states, %d synchronisations, "
        "waited %.3f ms in all",
        std::string(executor.device()->name()), t.uploads, t.downloads, t.synchronisations,
        t.wait_seconds * 1e3));
  }
  for (const std::string& line : lines) {
    std::fprintf(stderr, "%.*s%s\n", static_cast<int>(log_prefix.size()), log_prefix.data(),
                 line.c_str());
  }
}

}  // namespace pinfer
