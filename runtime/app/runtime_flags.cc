#include "runtime/app/runtime_flags.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <utility>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "runtime/common/cli_common.h"
#include "runtime/cpu/kernels.h"
#include "runtime/model/predictor_weights.h"

namespace pinfer {

void AddRuntimeFlags(CLI::App& app, RuntimeFlags& flags) {
  app.add_option("-m,--model", flags.model_path, "model file (.pi)")->required();
  app.add_option("-t,--threads", flags.threads, "CPU threads (-1: all)")->capture_default_str();
  app.add_option("-c,--ctx-size", flags.context, "context length (0: the model's)")
      ->capture_default_str();
  app.add_option("-b,--batch-size", flags.batch_size, "prompt tokens per forward pass")
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
      !flags.placement.vram_budget.empty();
  if (flags.sparse.dense && plan_asked) {
    return absl::InvalidArgumentError(
        "--dense runs every neuron on the CPU: it cannot be combined with --plan or --vram-budget");
  }
  return absl::OkStatus();
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
  if (absl::Status s = ValidateSparseFlags(flags.sparse); !s.ok()) return s;
  if (absl::Status s = ValidatePlacementFlags(flags.placement); !s.ok()) return s;
  return ValidateSparseWithPlacement(flags);
}

absl::StatusOr<LoadedRuntime> LoadRuntime(const RuntimeFlags& flags) {
  if (absl::Status s = ValidateRuntimeFlags(flags); !s.ok()) return s;
  const int hardware = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  cpu::SetThreads(flags.threads > 0 ? flags.threads : hardware);

  LoadedRuntime rt;
  const auto start = std::chrono::steady_clock::now();
  ModelLoadOptions load;
  load.populate = flags.populate;
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(flags.model_path, load);
  if (!model.ok()) return model.status();
  rt.model = *std::move(model);
  absl::StatusOr<Tokenizer> tokenizer = Tokenizer::Create(*rt.model->vocabulary());
  if (!tokenizer.ok()) return rt.model->file().Annotate(tokenizer.status());
  rt.tokenizer = std::make_unique<Tokenizer>(*std::move(tokenizer));
  ExecutorOptions exec;
  exec.batch_size = flags.batch_size;
  rt.executor = std::make_unique<Executor>(*rt.model, exec);
  absl::StatusOr<std::shared_ptr<SparseFfn>> sparse =
      SetUpSparseExecution(flags.sparse, flags.model_path, *rt.model, *rt.executor);
  if (!sparse.ok()) return sparse.status();
  rt.sparse = *std::move(sparse);
  // A plan replaces the sparse CPU FFN with the hybrid one on every layer; the hybrid FFN selects
  // its active neurons with the same predictor (--predictor, else the one beside the model).
  if (!flags.sparse.dense) {
    std::shared_ptr<const PredictorWeights> predictor;
    if (!flags.sparse.predictor_path.empty()) {
      absl::StatusOr<PredictorWeights> read =
          PredictorWeights::Read(flags.sparse.predictor_path, rt.model->file().ContentDigestHex());
      if (!read.ok()) return read.status();
      predictor = std::make_shared<const PredictorWeights>(*std::move(read));
    }
    // A calibrated silu/gelu model runs its hybrid CPU parts with the same thresholds as the sparse
    // FFN. Without a calibrated profile it runs exactly (every selected neuron kept), unless
    // --profile named one, which must then be valid.
    std::shared_ptr<const FiringThresholds> firing;
    if (!rt.model->config().ffn_act.HasExactZeros()) {
      absl::StatusOr<FiringThresholds> loaded =
          LoadFiringThresholds(flags.sparse, flags.model_path, *rt.model);
      if (loaded.ok()) {
        firing = std::make_shared<const FiringThresholds>(*std::move(loaded));
      } else if (!flags.sparse.profile_path.empty()) {
        return loaded.status();
      }
    }
    absl::StatusOr<PlacementSetup> placement = SetUpPlacement(
        flags.placement, *rt.model, *rt.executor, std::move(predictor), std::move(firing));
    if (!placement.ok()) return placement.status();
    rt.placement = *std::move(placement);
    if (rt.placement.hybrid != nullptr) {
      if (flags.sparse.check || flags.sparse.oracle) {
        return absl::InvalidArgumentError(
            absl::StrCat(flags.sparse.check ? "--check" : "--oracle-sparse",
                         " applies to the sparse CPU FFN, not to the hybrid FFN of the plan ",
                         rt.placement.plan_path, " (add --plan none)"));
      }
      rt.sparse = nullptr;
    }
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
      prefix.c_str(), flags.model_path.c_str(), c.architecture.c_str(),
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
               "%sloaded in %.1f ms; context %lld (trained %lld), KV cache %s, %d threads, "
               "kernels %s\n",
               prefix.c_str(), rt.load_seconds * 1e3, static_cast<long long>(context_length),
               static_cast<long long>(c.context_length), FormatBytes(kv_cache_bytes).c_str(),
               cpu::Threads(), cpu::SimdTargetName());
  if (rt.sparse != nullptr) {
    // SetUpSparseExecution only goes sparse with --oracle-sparse, --predictor or the predictor
    // beside the model.
    const std::string source =
        flags.sparse.oracle ? std::string("the true activations (--oracle-sparse)")
        : !flags.sparse.predictor_path.empty() ? flags.sparse.predictor_path
                                               : DefaultPredictorPath(flags.model_path);
    std::fprintf(stderr, "%sffn: sparse CPU execution, active neurons from %s\n", prefix.c_str(),
                 source.c_str());
  }
  for (const std::string& note : rt.placement.notes) {
    std::fprintf(stderr, "%s%s\n", prefix.c_str(), note.c_str());
  }
}

}  // namespace pinfer
