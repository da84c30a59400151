#include "tools/prepare/prepare.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <numeric>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "format/dtype.h"
#include "format/pi_file.h"
#include "format/strings.h"
#include "runtime/common/cli_common.h"
#include "runtime/model/activation.h"
#include "runtime/model/activation_profile.h"
#include "runtime/model/model_config.h"
#include "runtime/model/placement_plan.h"
#include "runtime/model/predictor_weights.h"
#include "tools/convert/converter.h"
#include "tools/convert/source_reader.h"
#include "tools/prepare/stage_record.h"
#include "tools/profile/profiler.h"
#include "tools/solve_placement/hardware_model.h"
#include "tools/solve_placement/model_problem.h"
#include "tools/solve_placement/place_model.h"
#include "tools/train_predictor/train_predictor.h"

namespace pinfer {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr char kProgram[] = "pi-prepare";

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

bool IsPiFile(const std::string& source) {
  std::error_code ec;
  return source.ends_with(".pi") && !fs::is_directory(source, ec);
}

// Where the artifacts go and what they are called: X.pi, X.profile.pi, ... with X the source's
// name without its extension (a directory's own name), in -o DIR or beside the source.
std::string ArtifactBase(const PrepareOptions& options) {
  fs::path source = fs::path(options.source).lexically_normal();
  if (source.filename().empty()) source = source.parent_path();  // "dir/"
  std::error_code ec;
  const bool directory = fs::is_directory(source, ec);
  const std::string name = directory ? source.filename().string() : source.stem().string();
  const fs::path dir =
      options.output_dir.empty() ? source.parent_path() : fs::path(options.output_dir);
  return (dir / name).string();
}

// Where pi-run looks for a plan when --plan is not given: model.pi -> model.plan.pi.
std::string PlanBesideModel(const std::string& model_path) {
  std::string base = model_path;
  if (base.ends_with(".pi")) base.resize(base.size() - 3);
  return base + ".plan.pi";
}

uint64_t FileSize(const std::string& path) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  return ec ? 0 : static_cast<uint64_t>(size);
}

std::string Percent(double fraction) { return absl::StrFormat("%.1f%%", fraction * 100); }

template <typename T, typename F>
double Mean(const std::vector<T>& items, F value) {
  if (items.empty()) return 0;
  double sum = 0;
  for (const T& item : items) sum += value(item);
  return sum / static_cast<double>(items.size());
}

// The pipeline's state between stages.
struct Pipeline {
  explicit Pipeline(const PrepareOptions& o) : options(o) {}
  const PrepareOptions& options;
  PrepareReport report;
  std::string model_digest;
  int stage_count = 0;

  void Print(const StageResult& stage) const {
    if (!options.progress) return;
    std::fprintf(stderr, "%s: %s\n", kProgram,
                 StageLine(stage, static_cast<int>(report.stages.size()) + 1, stage_count).c_str());
  }
  void Starting(const char* name) const {
    if (!options.progress) return;
    std::fprintf(stderr, "%s: [%zu/%d] %s...\n", kProgram, report.stages.size() + 1, stage_count,
                 name);
  }
  void Finish(StageResult stage) {
    Print(stage);
    report.stages.push_back(std::move(stage));
  }
  // The decision every stage after convert makes: skip it when its artifacts carry the record it
  // would write (and no --force), else announce it, run it, time it and say why it ran.
  // `readable`: whether the artifacts that exist open.
  absl::Status RunUnlessUpToDate(StageResult& stage, bool matches, bool readable,
                                 const std::function<absl::Status()>& run) const;
};

// --rank: "auto" (0) or a positive integer, as pi-train-predictor reads it.
absl::StatusOr<int64_t> ParseRank(const std::string& text) {
  int64_t rank = 0;
  if (text == "auto") return 0;
  if (!absl::SimpleAtoi(text, &rank) || rank <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--rank must be a positive integer or 'auto', got '", text, "'"));
  }
  return rank;
}

// Why a stage runs: --force, a missing or unreadable artifact, or a record that differs.
std::string RedoReason(bool force, const std::vector<std::string>& outputs, bool readable) {
  if (force) return "--force";
  std::error_code ec;
  for (const std::string& file : outputs) {
    if (!fs::exists(file, ec)) return "no artifact yet";
  }
  if (!readable) return "an artifact does not read";
  return "inputs or settings changed";
}

absl::Status Pipeline::RunUnlessUpToDate(StageResult& stage, bool matches, bool readable,
                                         const std::function<absl::Status()>& run) const {
  if (!options.force && matches) {
    stage.status = "skipped";
    stage.reason = "up to date";
    return absl::OkStatus();
  }
  stage.status = "done";
  stage.reason = RedoReason(options.force, stage.outputs, readable);
  Starting(stage.name.c_str());
  const Clock::time_point start = Clock::now();
  absl::Status ran = run();
  stage.seconds = SecondsSince(start);
  return ran;
}

// ---- 1. convert -------------------------------------------------------------------------------

absl::Status ConvertStage(Pipeline& p) {
  const PrepareOptions& o = p.options;
  StageResult stage;
  stage.name = "convert";
  stage.outputs = {p.report.model_path};
  SourceOptions source_options;
  source_options.tokenizer_path = o.tokenizer;
  if (!o.ffn_act.empty()) {
    absl::StatusOr<Activation> act = Activation::Parse(o.ffn_act);
    if (!act.ok())
      return absl::InvalidArgumentError(absl::StrCat("--ffn-act: ", act.status().message()));
    source_options.activations.ffn_act = *act;
  }
  if (!o.norm_act.empty()) {
    absl::StatusOr<Activation> act = Activation::Parse(o.norm_act, /*for_norm=*/true);
    if (!act.ok())
      return absl::InvalidArgumentError(absl::StrCat("--norm-act: ", act.status().message()));
    source_options.activations.norm_act = *act;
  }
  ConvertOptions convert;
  if (!o.dtype.empty()) {
    absl::StatusOr<DType> dtype = ParseWeightDType(o.dtype);
    if (!dtype.ok())
      return absl::InvalidArgumentError(absl::StrCat("--dtype: ", dtype.status().message()));
    convert.dtype = *dtype;
  }
  p.Starting("convert");
  const Clock::time_point start = Clock::now();
  absl::StatusOr<SourceModel> source = ReadSource(o.source, source_options);
  if (!source.ok()) return source.status();
  const std::optional<ArtifactRecord> existing =
      ReadArtifactRecord(p.report.model_path, ArtifactKind::kModel);
  absl::StatusOr<std::vector<std::string>> digests =
      SourceDigests(source->source_files, existing);
  if (!digests.ok()) return digests.status();
  // The source files' digests are compared separately (pi-convert records them itself).
  const std::string record =
      absl::StrCat("pi-prepare convert: dtype=", o.dtype.empty() ? "source" : o.dtype,
                   " ffn-act=", o.ffn_act.empty() ? "source" : o.ffn_act,
                   " norm-act=", o.norm_act.empty() ? "source" : o.norm_act);
  const bool matches =
      existing && existing->arguments == record && existing->source_digests == *digests;
  if (!o.force && matches) {
    stage.status = "skipped";
    stage.reason = "up to date";
  } else {
    stage.status = "done";
    stage.reason = RedoReason(o.force, stage.outputs, existing.has_value());
    convert.command_line = record;
    convert.progress = o.progress;
    absl::StatusOr<ConvertReport> converted = ConvertModel(*source, p.report.model_path, convert);
    if (!converted.ok()) return converted.status();
    stage.seconds = SecondsSince(start);
    if (o.progress) {
      for (const std::string& note : source->notes) {
        std::fprintf(stderr, "%s: note: %s\n", kProgram, note.c_str());
      }
    }
  }
  absl::StatusOr<std::unique_ptr<PiFile>> model =
      PiFile::Open(p.report.model_path, {.expected_kind = ArtifactKind::kModel});
  if (!model.ok()) return model.status();
  const uint64_t bytes = FileSize(p.report.model_path);
  const size_t tensors = (*model)->tensors().size();
  stage.summary =
      absl::StrFormat("%s, %d tensors, from %s", FormatBytes(bytes), tensors, source->format);
  stage.figures = {{"bytes", bytes}, {"tensors", tensors}, {"source_format", source->format}};
  p.Finish(std::move(stage));
  return absl::OkStatus();
}

// ---- 2. profile -------------------------------------------------------------------------------

absl::Status ProfileStage(Pipeline& p) {
  const PrepareOptions& o = p.options;
  StageResult stage;
  stage.name = "profile";
  const std::string plot =
      p.report.profile_path.substr(0, p.report.profile_path.size() - 3) + ".svg";
  stage.outputs = {p.report.profile_path, p.report.samples_path, plot};
  ProfileOptions profile;
  profile.model_path = p.report.model_path;
  profile.datasets = o.datasets;
  profile.output_path = p.report.profile_path;
  profile.samples_path = p.report.samples_path;
  profile.dump_samples = true;
  profile.max_tokens = o.max_tokens;
  profile.target_sparsity = o.target_sparsity;
  profile.threads = o.threads;
  profile.progress = o.progress;
  std::vector<std::string> datasets;
  for (const std::string& dataset : o.datasets) {
    absl::StatusOr<std::string> digest = FileDigest(dataset);
    if (!digest.ok())
      return absl::InvalidArgumentError(absl::StrCat("--dataset: ", digest.status().message()));
    datasets.push_back(absl::StrCat(fs::path(dataset).filename().string(), "@", *digest));
  }
  const std::string record = absl::StrCat(
      "pi-prepare profile: model=", p.model_digest, " datasets=", absl::StrJoin(datasets, ","),
      " max-tokens=", profile.max_tokens, " target-sparsity=", profile.target_sparsity,
      " context=", profile.context, " batch-size=", profile.batch_size,
      " calibration-tokens=", profile.calibration_tokens, " sample-every=", profile.sample_every,
      " sample-dtype=", Sv(DTypeName(profile.sample_dtype)));
  const std::optional<ArtifactRecord> existing =
      ReadArtifactRecord(p.report.profile_path, ArtifactKind::kProfile);
  const std::optional<std::string> samples_record =
      SamplesArguments(p.report.samples_path, p.model_digest);
  const bool matches = existing && existing->model_digest == p.model_digest &&
                       existing->arguments == record && samples_record == record &&
                       fs::is_regular_file(plot) &&
                       ActivationProfile::Read(p.report.profile_path, p.model_digest).ok();
  // Complete means all three files: the samples or the plot may be what is missing.
  absl::Status ran = p.RunUnlessUpToDate(
      stage, matches, existing.has_value() && samples_record.has_value(), [&] {
        profile.command_line = record;
        return RunProfile(profile).status();
      });
  if (!ran.ok()) return ran;
  absl::StatusOr<ActivationProfile> read =
      ActivationProfile::Read(p.report.profile_path, p.model_digest);
  if (!read.ok()) return read.status();
  std::vector<double> densities;
  for (int64_t l = 0; l < read->n_layers; ++l) densities.push_back(read->LayerDensity(l));
  const double density = Mean(densities, [](double d) { return d; });
  p.report.calibrated = read->calibrated();
  const uint64_t samples_bytes = FileSize(p.report.samples_path);
  stage.summary = absl::StrFormat(
      "%d tokens, mean density %s%s, samples %s", read->tokens, Percent(density),
      read->calibrated() ? absl::StrCat(" (target sparsity ", read->target_sparsity, ")")
                         : std::string(),
      FormatBytes(samples_bytes));
  stage.figures = {{"tokens", read->tokens},
                   {"mean_density", density},
                   {"calibrated", read->calibrated()},
                   {"profile_bytes", FileSize(p.report.profile_path)},
                   {"samples_bytes", samples_bytes}};
  p.Finish(std::move(stage));
  return absl::OkStatus();
}

// ---- 3. train-predictor -----------------------------------------------------------------------

absl::Status TrainStage(Pipeline& p) {
  const PrepareOptions& o = p.options;
  StageResult stage;
  stage.name = "train-predictor";
  stage.outputs = {p.report.predictor_path};
  TrainPredictorOptions train;
  train.model_path = p.report.model_path;
  train.samples_path = p.report.samples_path;
  train.output_path = p.report.predictor_path;
  if (absl::StatusOr<int64_t> rank = ParseRank(o.rank); rank.ok()) {
    train.rank = *rank;
  } else {
    return rank.status();
  }
  train.epochs = o.epochs;
  train.seed = o.seed;
  train.target_recall = o.target_recall;
  train.threads = o.threads;
  train.progress = o.progress;
  const std::optional<std::string> samples = SamplesDigest(p.report.samples_path, p.model_digest);
  if (!samples) {
    return absl::InternalError(absl::StrCat(p.report.samples_path, ": the samples do not open"));
  }
  const std::string record = absl::StrCat(
      "pi-prepare train-predictor: model=", p.model_digest, " samples=", *samples,
      " rank=", train.rank == 0 ? std::string("auto") : absl::StrCat(train.rank),
      " max-rank=", train.max_rank, " target-recall=", train.target_recall,
      " density-margin=", train.density_margin, " epochs=", train.epochs,
      " batch-size=", train.batch_size, " learning-rate=", train.learning_rate,
      " max-pos-weight=", train.max_pos_weight, " validation-fraction=", train.validation_fraction,
      " seed=", train.seed, " dtype=", Sv(DTypeName(train.dtype)), " device=", train.device);
  const std::optional<ArtifactRecord> existing =
      ReadArtifactRecord(p.report.predictor_path, ArtifactKind::kPredictor);
  const bool matches = existing && existing->model_digest == p.model_digest &&
                       existing->arguments == record &&
                       PredictorWeights::Read(p.report.predictor_path, p.model_digest).ok();
  absl::Status ran = p.RunUnlessUpToDate(stage, matches, existing.has_value(), [&] {
    train.command_line = record;
    return TrainPredictor(train).status();
  });
  if (!ran.ok()) return ran;
  absl::StatusOr<PredictorWeights> read =
      PredictorWeights::Read(p.report.predictor_path, p.model_digest);
  if (!read.ok()) return read.status();
  const auto& layers = read->layers;
  const double recall = Mean(layers, [](const PredictorLayer& l) { return l.report.recall; });
  const double predicted =
      Mean(layers, [](const PredictorLayer& l) { return l.report.predicted_density; });
  const double truth = Mean(layers, [](const PredictorLayer& l) { return l.report.true_density; });
  const uint64_t bytes = FileSize(p.report.predictor_path);
  stage.summary =
      absl::StrFormat("%s, recall %s, predicted density %s (true %s)", FormatBytes(bytes),
                      Percent(recall), Percent(predicted), Percent(truth));
  stage.figures = {{"bytes", bytes},
                   {"mean_recall", recall},
                   {"mean_predicted_density", predicted},
                   {"mean_true_density", truth}};
  p.Finish(std::move(stage));
  return absl::OkStatus();
}

// ---- 4. place ---------------------------------------------------------------------------------

absl::Status PlaceStage(Pipeline& p) {
  const PrepareOptions& o = p.options;
  StageResult stage;
  stage.name = "place";
  stage.outputs = {p.report.plan_path};
  PlaceModelOptions place;
  place.model_path = p.report.model_path;
  place.profile_path = p.report.profile_path;
  place.predictor_path = p.report.predictor_path;
  place.output_path = p.report.plan_path;
  place.placement.budget_bytes = *o.vram_bytes;
  place.placement.context = o.context;
  absl::StatusOr<HardwareModel> hardware = GpuPreset(o.gpu);
  if (!hardware.ok())
    return absl::InvalidArgumentError(absl::StrCat("--gpu: ", hardware.status().message()));
  place.placement.hardware = *hardware;
  const std::optional<ArtifactRecord> profile =
      ReadArtifactRecord(p.report.profile_path, ArtifactKind::kProfile);
  const std::optional<ArtifactRecord> predictor =
      ReadArtifactRecord(p.report.predictor_path, ArtifactKind::kPredictor);
  if (!profile || !predictor) {
    return absl::InternalError("the profile or the predictor does not open after its stage");
  }
  const ModelPlacementOptions& m = place.placement;
  const std::string record = absl::StrCat(
      "pi-prepare place: model=", p.model_digest, " profile=", profile->content_digest,
      " predictor=", predictor->content_digest, " vram=", m.budget_bytes, " ctx=", m.context,
      " group=", m.group_size, " batch=", m.batch,
      " objective=", m.objective == Objective::kCoverage ? "coverage" : "latency", " gpu=", o.gpu,
      " time-limit=", place.solve.mip.time_limit_s, " gap=", place.solve.mip.relative_gap);
  const std::optional<ArtifactRecord> existing =
      ReadArtifactRecord(p.report.plan_path, ArtifactKind::kPlan);
  const bool matches = existing && existing->model_digest == p.model_digest &&
                       existing->arguments == record &&
                       PlacementPlan::Read(p.report.plan_path, p.model_digest).ok();
  absl::Status ran = p.RunUnlessUpToDate(stage, matches, existing.has_value(), [&] {
    place.provenance.SetString(keys::kProvenanceTool, "pi-place");
    place.provenance.SetString(keys::kProvenanceArguments, record);
    place.program = kProgram;
    place.progress = o.progress;
    return PlaceModel(place).status();
  });
  if (!ran.ok()) return ran;
  absl::StatusOr<PlacementPlan> plan = PlacementPlan::Read(p.report.plan_path, p.model_digest);
  if (!plan.ok()) return plan.status();
  stage.summary =
      absl::StrFormat("budget %s, %s on the GPU, coverage %s, %d GPU neurons, %s",
                      FormatBytes(plan->budget_bytes), FormatBytes(plan->bytes.total()),
                      Percent(plan->expected_coverage), plan->GpuNeuronCount(), plan->solver);
  stage.figures = {{"budget_bytes", plan->budget_bytes},
                   {"gpu_bytes", plan->bytes.total()},
                   {"coverage", plan->expected_coverage},
                   {"gpu_neurons", plan->GpuNeuronCount()},
                   {"solver", plan->solver}};
  p.Finish(std::move(stage));
  return absl::OkStatus();
}

// A budget below the model's minimum working set (norms, workspace: nothing that depends on
// what fires) is refused before the profile and the predictor are made for nothing: the check
// runs on an empty profile of the model's shape, as the place stage will on the real one.
absl::Status CheckBudgetEarly(const PiFile& model, const Pipeline& p, const PrepareOptions& o) {
  absl::StatusOr<ModelConfig> config = ModelConfig::FromMetadata(model.metadata());
  if (!config.ok()) return config.status();
  ActivationProfile empty;
  empty.model_digest = p.model_digest;
  empty.n_layers = config->n_layers;
  empty.n_ff = config->n_ff;
  empty.tokens = 1;
  empty.fire_count.assign(static_cast<size_t>(config->n_layers * config->n_ff), 0);
  empty.mean_abs.assign(empty.fire_count.size(), 0.0f);
  empty.threshold.assign(static_cast<size_t>(config->n_layers), 0.0f);
  ModelPlacementOptions placement;
  placement.budget_bytes = *o.vram_bytes;
  placement.context = o.context;
  absl::StatusOr<HardwareModel> hardware = GpuPreset(o.gpu);
  if (!hardware.ok())
    return absl::InvalidArgumentError(absl::StrCat("--gpu: ", hardware.status().message()));
  placement.hardware = *hardware;
  absl::StatusOr<ModelProblem> problem = BuildModelProblem(model, empty, placement);
  if (!problem.ok()) return problem.status();
  if (absl::Status s = CheckBudget(problem->problem); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("--vram ", o.vram_text, ": ", s.message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidatePrepareOptions(const PrepareOptions& options) {
  std::error_code ec;
  if (!fs::exists(options.source, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat("-m ", options.source, ": no such file or directory"));
  }
  if (IsPiFile(options.source)) {
    for (const auto& [flag, value] :
         {std::pair<const char*, const std::string&>{"--tokenizer", options.tokenizer},
          {"--dtype", options.dtype},
          {"--ffn-act", options.ffn_act},
          {"--norm-act", options.norm_act}}) {
      if (!value.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(flag, " applies to the conversion, but ",
                                                       options.source, " is already a .pi model"));
      }
    }
  }
  if (options.datasets.empty()) return absl::InvalidArgumentError("--dataset is required");
  for (const std::string& dataset : options.datasets) {
    if (!fs::is_regular_file(dataset, ec)) {
      return absl::InvalidArgumentError(absl::StrCat("--dataset ", dataset, ": no such file"));
    }
  }
  if (!options.output_dir.empty() && fs::exists(options.output_dir, ec) &&
      !fs::is_directory(options.output_dir, ec)) {
    return absl::InvalidArgumentError(absl::StrCat("-o ", options.output_dir, ": not a directory"));
  }
  if (absl::StatusOr<int64_t> rank = ParseRank(options.rank); !rank.ok()) return rank.status();
  if (options.max_tokens == 0 || options.max_tokens < -1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max-tokens must be positive or -1 (the whole dataset), got ", options.max_tokens));
  }
  if (options.target_sparsity >= 0 &&
      !(options.target_sparsity > 0 && options.target_sparsity < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--target-sparsity must be between 0 and 1 (exclusive), got ", options.target_sparsity));
  }
  return absl::OkStatus();
}

absl::StatusOr<PrepareReport> RunPrepare(const PrepareOptions& options) {
  if (absl::Status s = ValidatePrepareOptions(options); !s.ok()) return s;
  const Clock::time_point start = Clock::now();
  if (!options.output_dir.empty()) {
    std::error_code ec;
    fs::create_directories(options.output_dir, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("-o ", options.output_dir, ": cannot create the directory: ", ec.message()));
    }
  }
  const bool convert = !IsPiFile(options.source);
  const std::string base = ArtifactBase(options);
  Pipeline p(options);
  p.report.program_dir = options.program_dir;
  p.stage_count = (convert ? 1 : 0) + 2 + (options.vram_bytes ? 1 : 0);
  p.report.model_path = convert ? base + ".pi" : options.source;
  p.report.profile_path = base + ".profile.pi";
  p.report.samples_path = base + ".samples.zst";
  p.report.predictor_path = base + ".predictor.pi";
  if (options.vram_bytes) p.report.plan_path = base + ".plan.pi";
  // Without a budget no plan is made; a plan found beside the model (which pi-run would load by
  // name) may be another predictor's, so the commands shown turn it off.
  std::error_code ec;
  p.report.plan_off = !options.vram_bytes && fs::exists(PlanBesideModel(p.report.model_path), ec);
  if (options.vram_bytes) {
    // A budget below the minimum working set is refused by the place stage; one that cannot hold
    // anything is refused here, before hours of profiling and training.
    if (*options.vram_bytes == 0) return absl::InvalidArgumentError("--vram must be more than 0");
    if (absl::StatusOr<HardwareModel> hw = GpuPreset(options.gpu); !hw.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--gpu: ", hw.status().message()));
    }
  }
  if (convert) {
    if (absl::Status s = ConvertStage(p); !s.ok()) return s;
  }
  {
    absl::StatusOr<std::unique_ptr<PiFile>> model =
        PiFile::Open(p.report.model_path, {.expected_kind = ArtifactKind::kModel});
    if (!model.ok()) return model.status();
    p.model_digest = (*model)->ContentDigestHex();
    if (options.vram_bytes) {
      if (absl::Status s = CheckBudgetEarly(**model, p, options); !s.ok()) return s;
    }
  }
  if (absl::Status s = ProfileStage(p); !s.ok()) return s;
  if (absl::Status s = TrainStage(p); !s.ok()) return s;
  if (options.vram_bytes) {
    if (absl::Status s = PlaceStage(p); !s.ok()) return s;
  }
  p.report.seconds = SecondsSince(start);
  return p.report;
}

}  // namespace pinfer
