// The flags that say which model to run and how, shared by every program that executes a model
// (pi-run, pi-server): registered on a CLI11 app by AddRuntimeFlags, turned into a Model, its
// Tokenizer and an Executor by LoadRuntime. Whatever changes how a model executes (a predictor, a
// GPU/CPU placement plan) is a flag here and an artifact of LoadRuntime, so that both programs get
// it at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/app/model_source.h"
#include "runtime/app/placement_setup.h"
#include "runtime/app/sparse_setup.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/kv_cache.h"
#include "runtime/exec/session.h"
#include "runtime/model/model.h"
#include "runtime/text/tokenizer.h"

namespace CLI {
class App;
}  // namespace CLI

namespace pinfer {

struct RuntimeFlags {
  std::string model_path;    // -m: a .pi, or a model to convert once (model_source.h)
  ModelSourceFlags source;   // --tokenizer, --dtype: how a -m that is not a .pi is converted
  int threads = -1;          // -t; -1: every hardware thread (0 is an error)
  int64_t context = 0;       // -c; positions per session, 0: the model's training context
  int64_t batch_size = 256;  // -b; prompt tokens per forward pass
  bool populate = true;      // pre-fault the mapping, so timings do not include disk reads
  SparseFlags sparse;        // --predictor, --dense, --check ... (sparse_setup.h)
  PlacementFlags placement;  // --plan, --vram-budget (placement_setup.h)
  // --cache-type: what the KV cache stores: f32, f16 (the default) or q8_0 (kv_cache.h).
  std::string cache_type = "f16";

  // What sessions over the executor get.
  SessionOptions session_options() const {
    SessionOptions options;
    options.context_length = context;
    // ValidateRuntimeFlags refuses any other name.
    options.cache_type = ParseKvCacheType(cache_type).value_or(kDefaultKvCacheType);
    return options;
  }
};

// Registers -m/--model (required), --tokenizer, --dtype, -t, -c, -b, --cache-type, --no-populate,
// the sparse and the placement flags.
void AddRuntimeFlags(CLI::App& app, RuntimeFlags& flags);

// Checks values that do not depend on the model; the message names the flag.
absl::Status ValidateRuntimeFlags(const RuntimeFlags& flags);

// Everything a program needs to run the model, loaded once and shared by its sessions.
struct LoadedRuntime {
  std::string model_path;  // the .pi loaded: -m, or its cached conversion (model_source.h)
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Executor> executor;
  std::vector<std::string> notes;  // how the FFN executes, for the load log
  double load_seconds = 0.0;
  // With a plan that puts something on the GPU: its budget and the bytes it expects per part, to
  // report next to what the device holds (DeviceMemoryLine, DeviceMemoryJson).
  std::optional<uint64_t> vram_budget;
  PlanBytes plan_bytes;
};

// "VRAM (cuda): 1.2 GiB of the 8 GiB budget: workspace ..., attention ...; the plan expects ..."
// once the sessions are created; empty without a device.
std::string DeviceMemoryLine(const LoadedRuntime& runtime);

// Decides once at load: validates the flags, sets the kernels' thread count, converts a -m that is
// not a .pi (or reuses its cached conversion: a line on stderr after `log_prefix` says which),
// maps the model,
// builds its tokenizer, resolves the artifacts (artifacts.h), then builds one FFN per layer
// (runtime/exec/ffn_builder.h: dense, sparse or hybrid) into the executor. Errors name the file or
// the flag.
absl::StatusOr<LoadedRuntime> LoadRuntime(const RuntimeFlags& flags,
                                          std::string_view log_prefix = "");

// Logs the model summary to stderr, each line starting with `log_prefix` ("pi-run: "): the
// architecture and weights, the load time, the context of a session, the KV cache type and the
// bytes of all the sessions' KV caches, threads and kernels, how the FFN executes; a warning for
// synthetic models and for a context beyond the one the model was trained on, a note for
// --no-populate.
void LogRuntimeSummary(std::string_view log_prefix, const RuntimeFlags& flags,
                       const LoadedRuntime& runtime, int64_t context_length,
                       uint64_t kv_cache_bytes);

// After a run: what the FFN did (runtime/exec/ffn_report.h), each line after `log_prefix`.
void LogFfnReport(std::string_view log_prefix, const Executor& executor);

}  // namespace pinfer
