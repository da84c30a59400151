// pi-sparse-bench: decode-time FFN speed of the neuron-sparse CPU FFN against the dense one, on
// one model, both measured in the same run (same weights, same threads, same token inputs).
//
// Every layer's FFN runs for each of -n tokens, one token per pass as in decode, through the real
// FFN engine (runtime/exec/layer_ffn.h: one CPU part computing every neuron, or one selecting part
// over the gather kernels). The selection comes from the planted
// firing probabilities of a pi-synth model (the synth.firing_probability tensor: each neuron of
// each token fires with its planted probability, drawn afresh per token): a perfect, free
// predictor, so the ratio is that of the FFN kernels themselves; with --predictor FILE the
// selection is that predictor's instead and its cost is included. Models without the planted
// tensor take --density D (uniform random selections).
//
// Reported per strategy: time per token (all layers' FFNs), FFN weight bytes actually read per
// token, their rate (effective GB/s), and the machine's read peak (a STREAM-like sum over a buffer
// larger than the caches, bench/kernels/read_peak.h) for comparison.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/kernels/read_peak.h"
#include "runtime/common/cli_common.h"
#include "runtime/common/cli_flags.h"
#include "runtime/cpu/kernels.h"
#include "runtime/exec/ffn_builder.h"
#include "runtime/exec/ffn_cost_model.h"
#include "runtime/exec/layer_ffn.h"
#include "runtime/exec/neuron_selector.h"
#include "runtime/model/model.h"
#include "runtime/model/predictor_weights.h"

namespace pinfer {
namespace {

constexpr char kProgram[] = "pi-sparse-bench";
constexpr char kPlantedTensor[] = "synth.firing_probability";

// Each neuron fires with its planted probability, independently per token.
class PlantedSelector : public NeuronSelector {
 public:
  PlantedSelector(std::vector<float> probability, int64_t n_ff)
      : probability_(std::move(probability)), n_ff_(n_ff) {}
  std::string_view name() const override { return "planted"; }
  absl::Status Select(int64_t layer, const float*, int64_t n, FfnWorkspace&,
                      SelectedNeurons& out) override {
    out.Clear();
    const float* p = probability_.data() + layer * n_ff_;
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t i = 0; i < n_ff_; ++i) {
        if (uniform_(rng_) < p[i]) out.ids.push_back(static_cast<int32_t>(i));
      }
      out.offsets.push_back(static_cast<int64_t>(out.ids.size()));
    }
    return absl::OkStatus();
  }
  uint64_t SelectBytes(int64_t) const override { return 0; }

 private:
  std::vector<float> probability_;  // [n_layers, n_ff]
  int64_t n_ff_;
  std::mt19937 rng_{42};
  std::uniform_real_distribution<float> uniform_{0.0f, 1.0f};
};

struct Timing {
  double seconds = 0.0;  // per token, the fastest repetition
  uint64_t bytes = 0;    // per token
};

using FfnLayers = std::vector<std::unique_ptr<LayerFfn>>;

absl::StatusOr<Timing> Run(FfnLayers& ffn, const Model& model, const std::vector<float>& inputs,
                           int64_t tokens, int repetitions) {
  const ModelConfig& c = model.config();
  FfnWorkspace ws;
  ws.capacity = 1;
  ws.gate.resize(c.n_ff);
  ws.up.resize(c.n_ff);
  ws.activations.resize(c.n_ff);
  std::vector<float> output(c.dim, 0.0f);
  Timing best;
  best.seconds = 1e30;
  for (int rep = 0; rep < repetitions; ++rep) {
    uint64_t bytes = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int64_t t = 0; t < tokens; ++t) {
      for (int64_t l = 0; l < c.n_layers; ++l) {
        FfnCall call;
        call.layer = l;
        call.n = 1;
        call.input = inputs.data() + (t * c.n_layers + l) * c.dim;
        call.output = output.data();
        call.workspace = &ws;
        absl::StatusOr<uint64_t> read = ffn[static_cast<size_t>(l)]->Forward(call);
        if (!read.ok()) return read.status();
        bytes += *read;
      }
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (seconds / tokens < best.seconds) best = {seconds / tokens, bytes / tokens};
  }
  return best;
}

double ReadPeakGBps() {
  const int64_t words = int64_t{1} << 27;  // 1 GiB: far beyond the caches
  std::vector<uint64_t> buffer(static_cast<size_t>(words), 1);
  double best = 0.0;
  uint64_t sink = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    const int threads = cpu::Threads();
    uint64_t sums[64] = {};
#pragma omp parallel num_threads(threads)
    {
      const int id = omp_get_thread_num();
      const int64_t chunk = words / threads / 64 * 64;
      sums[id] = bench::SumWords(buffer.data() + id * chunk, chunk);
    }
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (uint64_t v : sums) sink += v;
    best = std::max(best, static_cast<double>(words / threads / 64 * 64 * threads * 8) / s / 1e9);
  }
  if (sink == 42) std::printf(" ");
  return best;
}

absl::Status Main(const std::string& model_path, const std::string& predictor_path, double density,
                  int64_t tokens, int repetitions, int threads) {
  const int hardware = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  cpu::SetThreads(threads > 0 ? threads : hardware);
  ModelLoadOptions load;
  load.populate = true;  // as pi-run: timings without first touches
  absl::StatusOr<std::unique_ptr<Model>> loaded = Model::Load(model_path, load);
  if (!loaded.ok()) return loaded.status();
  const Model& model = **loaded;
  const ModelConfig& c = model.config();

  std::shared_ptr<NeuronSelector> selector;
  std::string selection;
  if (!predictor_path.empty()) {
    absl::StatusOr<PredictorWeights> weights = PredictorWeights::ReadFor(predictor_path, model);
    if (!weights.ok()) return weights.status();
    selector = std::make_shared<PredictorSelector>(
        std::make_shared<const PredictorWeights>(*std::move(weights)));
    selection = absl::StrCat("predictor ", predictor_path);
  } else {
    std::vector<float> probability(static_cast<size_t>(c.n_layers * c.n_ff));
    if (const TensorInfo* planted = model.file().Find(kPlantedTensor); planted != nullptr) {
      if (planted->dtype != DType::kF32 || planted->size != probability.size() * sizeof(float)) {
        return absl::InvalidArgumentError(
            absl::StrCat(model_path, ": ", kPlantedTensor, " is not f32 [n_layers, n_ff]"));
      }
      std::copy_n(model.file().DataAs<float>(*planted), probability.size(), probability.data());
      selection = "planted firing probabilities";
    } else {
      if (!(density > 0.0 && density <= 1.0)) {
        return absl::InvalidArgumentError(
            absl::StrCat(model_path, ": no planted firing probabilities (", kPlantedTensor,
                         "); pass --density D in (0, 1]"));
      }
      std::fill(probability.begin(), probability.end(), static_cast<float>(density));
      selection = absl::StrFormat("uniform density %.3f", density);
    }
    selector = std::make_shared<PlantedSelector>(std::move(probability), c.n_ff);
  }

  // Token inputs: unit-variance vectors, one per token and layer (the FFN input after the norm).
  std::vector<float> inputs(static_cast<size_t>(tokens * c.n_layers * c.dim));
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  for (float& v : inputs) v = normal(rng);

  absl::StatusOr<FfnCostModel> measured = MeasureFfnCostModel(model);
  if (!measured.ok()) return measured.status();
  absl::StatusOr<FfnLayers> dense = BuildFfnLayers(model, {});
  if (!dense.ok()) return dense.status();
  FfnSetup setup;
  setup.selector = selector;
  setup.firing = std::make_shared<const FiringThresholds>(FiringThresholds{c.ffn_act, {}});
  // Always sparse, to measure it; the measured crossover is printed for reference.
  setup.cost = std::make_shared<const FfnCostModel>(FfnCostModel::Fixed(1.01));
  absl::StatusOr<FfnLayers> sparse = BuildFfnLayers(model, setup);
  if (!sparse.ok()) return sparse.status();

  // Interleaved repetitions would compete for the same caches; each FFN runs its own.
  absl::StatusOr<Timing> d = Run(*dense, model, inputs, tokens, repetitions);
  if (!d.ok()) return d.status();
  absl::StatusOr<Timing> s = Run(*sparse, model, inputs, tokens, repetitions);
  if (!s.ok()) return s.status();
  double selected = 0.0;
  for (const auto& layer : *sparse) selected += layer->Totals().SelectedDensity(c.n_ff);
  selected /= static_cast<double>(c.n_layers);
  const double peak = ReadPeakGBps();

  std::printf("model %s: %s weights, dim %lld, n_ff %lld, %lld layers; %d threads, kernels %s\n",
              model_path.c_str(), model.WeightDTypeSummary().c_str(), static_cast<long long>(c.dim),
              static_cast<long long>(c.n_ff), static_cast<long long>(c.n_layers), cpu::Threads(),
              cpu::SimdTargetName());
  std::printf("selection: %s (mean selected density %.3f)\n", selection.c_str(), selected);
  std::printf("cost model: %s\n", measured->source.c_str());
  std::printf("%-8s %14s %16s %12s %14s\n", "ffn", "ms/token", "MB read/token", "GB/s",
              "of read peak");
  for (const auto& [name, t] : {std::pair<const char*, Timing>{"dense", *d}, {"sparse", *s}}) {
    const double gbps = static_cast<double>(t.bytes) / t.seconds / 1e9;
    std::printf("%-8s %14.3f %16.2f %12.2f %13.0f%%\n", name, t.seconds * 1e3,
                static_cast<double>(t.bytes) / 1e6, gbps, 100.0 * gbps / peak);
  }
  std::printf("read peak %.2f GB/s; sparse speedup %.2fx (%d repetitions of %lld tokens, best)\n",
              peak, d->seconds / s->seconds, repetitions, static_cast<long long>(tokens));
  return absl::OkStatus();
}

}  // namespace
}  // namespace pinfer

int main(int argc, char** argv) {
  CLI::App app{
      "Decode-time FFN speed of the sparse CPU FFN against the dense one, measured in one run.\n"
      "Example:\n"
      "  pi-synth --shape custom:d=4096,ff=11008,layers=4,heads=32,vocab=32000 --dtype q4_0 \\\n"
      "      -o /tmp/synth.pi && pi-sparse-bench -m /tmp/synth.pi -n 32 -t 2"};
  std::string model_path, predictor_path;
  double density = -1.0;
  int64_t tokens = 32;
  int repetitions = 3, threads = -1;
  app.add_option("-m,--model", model_path, "model file (.pi)")->required();
  app.add_option("--predictor", predictor_path, "select with this predictor (default: planted)");
  app.add_option("--density", density,
                 "uniform selection density for models without planted "
                 "firing probabilities");
  app.add_option("-n,--tokens", tokens, "tokens per repetition")->capture_default_str();
  app.add_option("-r,--repetitions", repetitions, "repetitions (the fastest counts)")
      ->capture_default_str();
  app.add_option("-t,--threads", threads, "threads (-1: all)")->capture_default_str();
  pinfer::AddVersionFlag(app, pinfer::kProgram);
  CLI11_PARSE(app, argc, argv);
  if (tokens < 1 || repetitions < 1) {
    return pinfer::ReportError(pinfer::kProgram,
                               absl::InvalidArgumentError("-n and -r must be at least 1"));
  }
  const absl::Status status =
      pinfer::Main(model_path, predictor_path, density, tokens, repetitions, threads);
  if (!status.ok()) return pinfer::ReportError(pinfer::kProgram, status);
  return 0;
}
