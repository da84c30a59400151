#include "tools/profile/profiler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <span>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "format/atomic_file.h"
#include "format/output_check.h"
#include "format/sample_file.h"
#include "format/strings.h"
#include "runtime/common/cli_common.h"
#include "runtime/cpu/kernels.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/session.h"
#include "runtime/model/activation_profile.h"
#include "runtime/model/model.h"
#include "runtime/text/tokenizer.h"
#include "tools/profile/activation_counter.h"
#include "tools/profile/dataset.h"
#include "tools/profile/firing_plot.h"
#include "tools/profile/threshold_calibrator.h"

namespace pinfer {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kDefaultCalibrationTokens = 4096;

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string PlotPathFor(const std::string& profile_path) {
  std::string base = profile_path;
  if (base.ends_with(".pi")) base.resize(base.size() - 3);
  return base + ".svg";
}

// Evaluates every chunk of `chunker` from an empty cache, in batches, without logits, advancing
// `bar` after each batch; `after_chunk` may stop the run with an error.
absl::Status EvaluateChunks(Session& session, TokenChunker& chunker, int64_t batch_size,
                            ProgressBar& bar, const std::function<absl::Status()>& after_chunk) {
  std::vector<int32_t> chunk;
  while (true) {
    absl::StatusOr<bool> more = chunker.Next(chunk);
    if (!more.ok()) return more.status();
    if (!*more) return absl::OkStatus();
    session.Reset();
    for (size_t first = 0; first < chunk.size(); first += static_cast<size_t>(batch_size)) {
      const size_t n = std::min(chunk.size() - first, static_cast<size_t>(batch_size));
      absl::StatusOr<std::span<const float>> evaluated =
          session.Evaluate(std::span<const int32_t>(chunk).subspan(first, n), Logits::kNone);
      if (!evaluated.ok()) return evaluated.status();
      bar.Add(n);
    }
    if (after_chunk) {
      if (absl::Status s = after_chunk(); !s.ok()) return s;
    }
  }
}

// Removes committed outputs when a later one fails, so that a run writes all of them or none.
class CommittedOutputs {
 public:
  void Add(std::string path) { paths_.push_back(std::move(path)); }
  void Keep() { paths_.clear(); }
  ~CommittedOutputs() {
    std::error_code ignored;
    for (const std::string& p : paths_) fs::remove(p, ignored);
  }

 private:
  std::vector<std::string> paths_;
};

}  // namespace

absl::Status ValidateProfileOptions(const ProfileOptions& o) {
  if (o.model_path.empty()) return absl::InvalidArgumentError("-m: no model given");
  if (o.datasets.empty()) return absl::InvalidArgumentError("--dataset: no dataset files given");
  if (o.max_tokens == 0 || o.max_tokens < -1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max-tokens must be positive (or -1 for the whole dataset), got ", o.max_tokens));
  }
  if (o.context < 0 || o.context == 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "-c must be at least 2 tokens (or 0 for the model's context), got ", o.context));
  }
  if (o.batch_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("-b must be at least 1, got ", o.batch_size));
  }
  if (o.threads == 0 || o.threads < -1) {
    return absl::InvalidArgumentError(
        absl::StrCat("-t must be positive (or -1 for all threads), got ", o.threads));
  }
  if (o.target_sparsity >= 0 && !(o.target_sparsity > 0 && o.target_sparsity < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--target-sparsity must be between 0 and 1 (exclusive), got ", o.target_sparsity));
  }
  if (std::isnan(o.target_sparsity)) {
    return absl::InvalidArgumentError("--target-sparsity must be between 0 and 1, got nan");
  }
  if (o.calibration_tokens < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--calibration-tokens must be positive (or 0 for the default), got ",
                     o.calibration_tokens));
  }
  if (o.sample_every < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--sample-every must be at least 1, got ", o.sample_every));
  }
  if (o.sample_dtype != DType::kF16 && o.sample_dtype != DType::kF32) {
    return absl::InvalidArgumentError(
        absl::StrCat("--sample-dtype must be f16 or f32, not ", Sv(DTypeName(o.sample_dtype))));
  }
  return absl::OkStatus();
}

absl::StatusOr<ProfileReport> RunProfile(const ProfileOptions& options) {
  const auto wall_start = std::chrono::steady_clock::now();
  if (absl::Status s = ValidateProfileOptions(options); !s.ok()) return s;
  if (absl::Status s = CheckDatasetFiles(options.datasets); !s.ok()) return s;
  ProgressBar::SetEnabled(options.progress);
  if (options.threads > 0) cpu::SetThreads(options.threads);

  absl::StatusOr<std::unique_ptr<Model>> loaded = Model::Load(options.model_path);
  if (!loaded.ok()) return loaded.status();
  const Model& model = **loaded;
  const ModelConfig& config = model.config();
  absl::StatusOr<Tokenizer> tokenizer = Tokenizer::Create(*model.vocabulary());
  if (!tokenizer.ok()) return model.file().Annotate(tokenizer.status());

  // The firing rule: exact zeros, or thresholds to calibrate.
  const bool calibrate = !config.ffn_act.HasExactZeros();
  const std::string act = config.ffn_act.ToString();
  if (!calibrate && options.target_sparsity >= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--target-sparsity: ", options.model_path, " has exact zeros (FFN activation ",
                     act, "): its sparsity is the model's own and needs no threshold"));
  }
  if (!options.thresholds_from.empty() && (!calibrate || options.target_sparsity >= 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--thresholds-from: ",
        calibrate ? "give either --target-sparsity or --thresholds-from, not both"
                  : absl::StrCat(options.model_path, " has exact zeros (FFN activation ", act,
                                 "): it has no thresholds")));
  }
  if (calibrate && options.target_sparsity < 0 && options.thresholds_from.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        options.model_path, ": the FFN activation ", act,
        " has no exact zeros: give --target-sparsity S (0 < S < 1, e.g. 0.5) to calibrate "
        "per-layer thresholds"));
  }
  const int64_t context = options.context > 0 ? options.context : config.context_length;
  if (context > config.context_length) {
    return absl::InvalidArgumentError(absl::StrCat("-c ", context,
                                                   " exceeds the model's training context of ",
                                                   config.context_length, " tokens"));
  }

  const std::string profile_path =
      options.output_path.empty() ? DefaultProfilePath(options.model_path) : options.output_path;
  const std::string plot_path =
      options.plot_path.empty() ? PlotPathFor(profile_path) : options.plot_path;
  const std::string samples_path = options.samples_path.empty()
                                       ? DefaultSampleFilePath(options.model_path)
                                       : options.samples_path;
  {
    std::vector<OutputFile> outputs = {{"-o", profile_path, ArtifactKind::kProfile},
                                       {"--plot", plot_path, std::nullopt}};
    if (options.dump_samples) outputs.push_back({"--samples", samples_path, std::nullopt});
    std::vector<InputFile> inputs = {{"the model", options.model_path}};
    for (const std::string& dataset : options.datasets) inputs.push_back({"a dataset", dataset});
    if (absl::Status s = CheckOutputs(outputs, inputs); !s.ok()) return s;
  }

  const std::string digest = model.file().ContentDigestHex();
  // Thresholds taken from another profile of this model.
  std::vector<float> thresholds_from;
  double target_sparsity = options.target_sparsity;
  if (!options.thresholds_from.empty()) {
    absl::StatusOr<ActivationProfile> source =
        ActivationProfile::Read(options.thresholds_from, digest);
    if (!source.ok()) return source.status();
    if (!source->calibrated() || source->n_layers != config.n_layers) {
      return absl::InvalidArgumentError(absl::StrCat("--thresholds-from ", options.thresholds_from,
                                                     ": the profile has no calibrated "
                                                     "thresholds"));
    }
    thresholds_from = source->threshold;
    target_sparsity = source->target_sparsity;
  }

  // Count the tokens first (as far as profiling and calibration read): the progress bar's total,
  // and bad input found before any model work.
  int64_t read_tokens = 0;
  {
    const int64_t limit =
        options.max_tokens < 0
            ? -1
            : std::max(options.max_tokens, calibrate ? options.calibration_tokens : int64_t{0});
    TokenChunker counter(options.datasets, *tokenizer, {context, limit});
    uint64_t dataset_bytes = 0;
    for (const std::string& path : options.datasets) {
      std::error_code ignored;
      const uintmax_t size = fs::file_size(path, ignored);
      if (!ignored) dataset_bytes += size;
    }
    ProgressBar bar("tokenizing", dataset_bytes, "B");
    std::vector<int32_t> chunk;
    while (true) {
      absl::StatusOr<bool> more = counter.Next(chunk);
      if (!more.ok()) return more.status();
      if (!*more) break;
      bar.Update(counter.bytes_read());
    }
    bar.Finish();
    read_tokens = counter.tokens();
  }
  if (read_tokens == 0) {
    return absl::InvalidArgumentError("--dataset: the dataset holds no tokens");
  }
  const int64_t total_tokens =
      options.max_tokens < 0 ? read_tokens : std::min(read_tokens, options.max_tokens);

  ExecutorOptions executor_options;
  executor_options.batch_size = options.batch_size;
  Executor executor(model, executor_options);
  absl::StatusOr<std::unique_ptr<Session>> created =
      Session::Create(executor, SessionOptions{context});
  if (!created.ok()) return created.status();
  Session& session = **created;

  ProfileReport report;
  report.model_path = options.model_path;
  report.model_name = config.name;
  report.activation = act;
  report.datasets = options.datasets;
  report.context = context;
  report.calibrated = calibrate;

  FiringThresholds rule;
  rule.activation = config.ffn_act;
  rule.per_layer = thresholds_from;
  if (!options.thresholds_from.empty()) {
    report.target_sparsity = target_sparsity;
    report.thresholds_from = options.thresholds_from;
  } else if (calibrate) {
    const auto start = std::chrono::steady_clock::now();
    const int64_t tokens = options.calibration_tokens > 0
                               ? std::min(options.calibration_tokens, read_tokens)
                               : std::min<int64_t>(kDefaultCalibrationTokens, total_tokens);
    const int64_t capacity = options.reservoir_capacity > 0
                                 ? options.reservoir_capacity
                                 : ThresholdCalibrator::DefaultCapacity(config.n_layers);
    ThresholdCalibrator calibrator(config.n_layers, config.ffn_act, capacity);
    session.SetObserver(&calibrator);
    TokenChunker chunker(options.datasets, *tokenizer, {context, tokens});
    ProgressBar bar("calibrating", static_cast<uint64_t>(tokens), "tok");
    if (absl::Status s = EvaluateChunks(session, chunker, options.batch_size, bar, nullptr);
        !s.ok()) {
      return s;
    }
    bar.Finish();
    session.SetObserver(nullptr);
    rule.per_layer = calibrator.Thresholds(options.target_sparsity);
    report.target_sparsity = options.target_sparsity;
    report.calibration_tokens = tokens;
    report.calibration_seconds = SecondsSince(start);
  }

  Metadata provenance;
  provenance.SetString(keys::kProvenanceTool, "pi-profile");
  provenance.SetString(keys::kProvenanceToolVersion, PINFER_VERSION);
  if (!options.command_line.empty()) {
    provenance.SetString(keys::kProvenanceArguments, options.command_line);
  }
  provenance.SetString(keys::kProvenanceSource, options.model_path);

  std::unique_ptr<SampleFileWriter> samples;
  if (options.dump_samples) {
    SampleFileSpec spec;
    spec.model_digest = digest;
    spec.n_layers = config.n_layers;
    spec.dim = config.dim;
    spec.n_ff = config.n_ff;
    spec.input_dtype = options.sample_dtype;
    spec.extra = provenance;
    spec.extra.SetString("samples.fire_rule", calibrate ? "threshold" : "nonzero");
    if (calibrate) spec.extra.SetFloatArray("samples.thresholds", rule.per_layer);
    spec.extra.SetInt("samples.sample_every", options.sample_every);
    absl::StatusOr<std::unique_ptr<SampleFileWriter>> writer =
        SampleFileWriter::Create(samples_path, std::move(spec));
    if (!writer.ok()) return writer.status();
    samples = *std::move(writer);
  }

  ActivationCounter counter(config, rule, samples.get(), options.sample_every);
  session.SetObserver(&counter);
  session.ResetStats();
  TokenChunker chunker(options.datasets, *tokenizer, {context, options.max_tokens});
  {
    ProgressBar bar("profiling", static_cast<uint64_t>(total_tokens), "tok");
    absl::Status s = EvaluateChunks(session, chunker, options.batch_size, bar,
                                    [&counter] { return counter.status(); });
    if (!s.ok()) return s;
    bar.Finish();
  }
  session.SetObserver(nullptr);
  report.tokens = counter.tokens();
  report.chunks = chunker.chunks();
  report.seconds = session.stats().seconds;
  report.tokens_per_second = report.seconds > 0 ? report.tokens / report.seconds : 0.0;

  absl::StatusOr<ActivationProfile> profile = counter.ToProfile();
  if (!profile.ok()) return profile.status();
  profile->model_digest = digest;
  profile->context = context;
  profile->datasets = options.datasets;
  profile->target_sparsity = calibrate ? target_sparsity : -1.0;

  CommittedOutputs committed;
  if (samples != nullptr) {
    if (absl::Status s = samples->Commit(); !s.ok()) return s;
    committed.Add(samples_path);
    report.has_samples = true;
    report.samples = {samples_path,
                      samples->samples(0),
                      samples->frames(),
                      samples->bytes_written(),
                      std::string(DTypeName(options.sample_dtype)),
                      options.sample_every};
  }
  Metadata extra = provenance;
  extra.SetInt("profile.chunks", report.chunks);
  if (calibrate) extra.SetInt("profile.calibration_tokens", report.calibration_tokens);
  if (absl::Status s = profile->Write(profile_path, extra); !s.ok()) return s;
  committed.Add(profile_path);

  FillLayerStats(*profile, report);
  FiringPlotOptions plot;
  plot.title = absl::StrCat(
      "Sorted neuron firing frequency per layer: ",
      config.name.empty() ? fs::path(options.model_path).filename().string() : config.name);
  plot.subtitle = absl::StrFormat(
      "%d tokens, FFN %s%s, mean density %.2f%%, %d neurons per layer", report.tokens, act,
      calibrate ? absl::StrFormat(" (|act| > τ, target sparsity %.0f%%)", target_sparsity * 100)
                : std::string(" (fires: a != 0)"),
      report.mean_density * 100, config.n_ff);
  if (absl::Status s = WriteFileAtomically(plot_path, RenderFiringPlotSvg(*profile, plot));
      !s.ok()) {
    return s;
  }
  committed.Keep();
  report.profile_path = profile_path;
  report.plot_path = plot_path;
  report.wall_seconds = SecondsSince(wall_start);
  return report;
}

}  // namespace pinfer
