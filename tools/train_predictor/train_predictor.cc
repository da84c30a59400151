#include "tools/train_predictor/train_predictor.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "format/output_check.h"
#include "format/quant.h"
#include "format/sample_file.h"
#include "format/strings.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/predictor_kernel.h"
#include "runtime/model/model.h"
#include "runtime/model/model_config.h"
#include "runtime/model/predictor_weights.h"
#include "tools/train_predictor/decision_threshold.h"
#include "tools/train_predictor/mlp_trainer.h"
#include "tools/train_predictor/sample_stream.h"

namespace pinfer {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

std::string DefaultSamples(const std::string& model_path) {
  return DefaultSampleFilePath(model_path);
}

// One layer's predictor in the stored dtype.
struct EncodedLayer {
  int64_t rank = 0;
  std::vector<uint8_t> w1, w2;
  std::vector<float> b1, b2;
};

// --dtype auto: how much more q8_0 may select than f16 at the target recall and still be chosen.
constexpr double kQ8DensitySlack = 0.02;

// Bytes of one layer's predictor of `rank` as stored (PredictorWeights::LayerBytes).
absl::StatusOr<uint64_t> PredictorBytes(DType dtype, int64_t dim, int64_t n_ff, int64_t rank) {
  absl::StatusOr<uint64_t> row1 = RowBytes(dtype, static_cast<uint64_t>(dim));
  absl::StatusOr<uint64_t> row2 = RowBytes(dtype, static_cast<uint64_t>(rank));
  if (!row1.ok()) return row1.status();
  if (!row2.ok()) return row2.status();
  return *row1 * static_cast<uint64_t>(rank) + *row2 * static_cast<uint64_t>(n_ff) +
         sizeof(float) * static_cast<uint64_t>(rank + n_ff);
}

absl::StatusOr<EncodedLayer> Encode(const MlpWeights& w, DType dtype) {
  EncodedLayer e;
  e.rank = w.rank;
  absl::StatusOr<uint64_t> row1 = RowBytes(dtype, static_cast<uint64_t>(w.dim));
  absl::StatusOr<uint64_t> row2 = RowBytes(dtype, static_cast<uint64_t>(w.rank));
  if (!row1.ok()) return row1.status();
  if (!row2.ok()) return row2.status();
  e.w1.resize(*row1 * static_cast<uint64_t>(w.rank));
  e.w2.resize(*row2 * static_cast<uint64_t>(w.n_ff));
  for (int64_t r = 0; r < w.rank; ++r) {
    if (absl::Status s = EncodeRow(w.w1.data() + r * w.dim, static_cast<size_t>(w.dim), dtype,
                                   e.w1.data() + static_cast<uint64_t>(r) * *row1);
        !s.ok()) {
      return s;
    }
  }
  for (int64_t i = 0; i < w.n_ff; ++i) {
    if (absl::Status s = EncodeRow(w.w2.data() + i * w.rank, static_cast<size_t>(w.rank), dtype,
                                   e.w2.data() + static_cast<uint64_t>(i) * *row2);
        !s.ok()) {
      return s;
    }
  }
  e.b1 = w.b1;
  e.b2 = w.b2;
  return e;
}

cpu::PredictorView ViewOf(const EncodedLayer& e, DType dtype, int64_t dim, int64_t n_ff) {
  cpu::PredictorView v;
  v.w1 = cpu::MakeMatrixView(dtype, e.rank, dim, e.w1.data());
  v.b1 = e.b1.data();
  v.w2 = cpu::MakeMatrixView(dtype, n_ff, e.rank, e.w2.data());
  v.b2 = e.b2.data();
  return v;
}

// The validation logits of the stored predictor, computed by the runtime's kernel.
absl::StatusOr<LogitHistogram> EvaluateStored(const LayerSampleStream& data,
                                              const cpu::PredictorView& view) {
  LogitHistogram histogram;
  cpu::PredictorScratch scratch;
  absl::Status s = data.ForEachValidationBatch(256, [&](const SampleBlock& block) {
    const float* logits =
        cpu::PredictorLogits(view, block.inputs.data(), block.count, scratch).data();
    for (int64_t t = 0; t < block.count; ++t) {
      histogram.Add(logits + t * view.n_ff(), block.Mask(t), view.n_ff());
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return histogram;
}

double DecisionTarget(const TrainPredictorOptions& options) {
  return options.powerinfer_compatible ? -1.0 : options.target_recall;
}

struct TrainedRank {
  EncodedLayer encoded;
  DecisionStats decision;
  double recall_at_half = 0;
  MlpWeights weights;  // before rounding: another dtype may encode them
};

// `weights` rounded to `dtype` and evaluated on the validation samples with the runtime's kernel.
// target_recall < 0: the decision at logit 0 (--powerinfer-compatible).
absl::StatusOr<TrainedRank> EncodeAndDecide(const LayerSampleStream& data, MlpWeights weights,
                                            DType dtype, double target_recall) {
  absl::StatusOr<EncodedLayer> encoded = Encode(weights, dtype);
  if (!encoded.ok()) return encoded.status();
  absl::StatusOr<LogitHistogram> histogram =
      EvaluateStored(data, ViewOf(*encoded, dtype, data.dim(), data.n_ff()));
  if (!histogram.ok()) return histogram.status();
  TrainedRank result;
  result.encoded = *std::move(encoded);
  result.decision = target_recall < 0 ? histogram->At(0.0f) : histogram->ForRecall(target_recall);
  result.recall_at_half = histogram->At(0.0f).recall;
  result.weights = std::move(weights);
  return result;
}

absl::StatusOr<TrainedRank> TrainRank(const LayerSampleStream& data, int64_t rank,
                                      const TrainPredictorOptions& options, bool use_cuda,
                                      int64_t n_layers) {
  MlpTrainOptions train;
  train.rank = rank;
  train.epochs = options.epochs;
  train.batch_size = options.batch_size;
  train.learning_rate = options.learning_rate;
  train.max_pos_weight = options.max_pos_weight;
  train.seed = options.seed;
  train.use_cuda = use_cuda;
  train.biases = !options.powerinfer_compatible;
  auto on_epoch = [&](const EpochReport& e) {
    if (!options.progress) return;
    std::fprintf(stderr,
                 "pi-train-predictor: layer %lld/%lld rank %lld epoch %lld/%lld: loss %.4f, "
                 "validation loss %.4f, recall %.4f, precision %.4f at p >= 0.5 (%.1f s)\n",
                 static_cast<long long>(data.layer() + 1), static_cast<long long>(n_layers),
                 static_cast<long long>(rank), static_cast<long long>(e.epoch),
                 static_cast<long long>(options.epochs), e.train_loss, e.validation_loss, e.recall,
                 e.precision, e.seconds);
  };
  absl::StatusOr<MlpWeights> weights = TrainMlp(data, train, on_epoch);
  if (!weights.ok()) return weights.status();
  return EncodeAndDecide(data, *std::move(weights), options.dtype, DecisionTarget(options));
}

// A layer's choice, before the predictor's dtype is settled.
struct ChosenLayer {
  TrainedRank trained;            // in options.dtype
  std::optional<TrainedRank> q8;  // --dtype auto: the same weights in q8_0
  LayerTrainReport report;        // the trials so far
  int64_t train_samples = 0, validation_samples = 0;
};

}  // namespace

std::vector<int64_t> RankLadder(int64_t max_rank, int64_t n_ff) {
  std::vector<int64_t> ladder;
  for (int64_t r : DefaultRankLadder()) {
    if (r <= max_rank && (r <= n_ff || ladder.empty())) ladder.push_back(r);
  }
  return ladder;
}

absl::Status ValidateTrainPredictorOptions(const TrainPredictorOptions& o) {
  if (o.model_path.empty()) return absl::InvalidArgumentError("-m/--model is required");
  if (!(o.target_recall > 0 && o.target_recall <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--target-recall must be in (0, 1], got ", o.target_recall));
  }
  if (!(o.density_margin >= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--density-margin must be at least 0, got ", o.density_margin));
  }
  if (o.rank < 0)
    return absl::InvalidArgumentError(
        absl::StrCat("--rank must be positive or auto, got ", o.rank));
  if (o.rank == 0 && o.max_rank < DefaultRankLadder().front()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max-rank must be at least ", DefaultRankLadder().front(), ", got ", o.max_rank));
  }
  if (o.dtype != DType::kF32 && o.dtype != DType::kF16 && o.dtype != DType::kQ8_0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--dtype must be f16, q8_0 or f32, got ", Sv(DTypeName(o.dtype))));
  }
  if (o.rank > 0 && o.rank % GetDTypeInfo(o.dtype).block_elements != 0) {
    return absl::InvalidArgumentError(absl::StrCat("--rank ", o.rank, " must be a multiple of ",
                                                   GetDTypeInfo(o.dtype).block_elements,
                                                   " for --dtype ", Sv(DTypeName(o.dtype))));
  }
  if (o.epochs < 1)
    return absl::InvalidArgumentError(absl::StrCat("--epochs must be at least 1, got ", o.epochs));
  if (o.batch_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--batch-size must be at least 1, got ", o.batch_size));
  }
  if (!(o.learning_rate > 0 && std::isfinite(o.learning_rate))) {
    return absl::InvalidArgumentError(
        absl::StrCat("--learning-rate must be positive, got ", o.learning_rate));
  }
  if (!(o.max_pos_weight >= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-pos-weight must be at least 1, got ", o.max_pos_weight));
  }
  if (!(o.validation_fraction > 0 && o.validation_fraction < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--validation-fraction must be between 0 and 1 (exclusive), got ", o.validation_fraction));
  }
  if (o.threads == 0 || o.threads < -1) {
    return absl::InvalidArgumentError(
        absl::StrCat("-t/--threads must be positive or -1, got ", o.threads));
  }
  if (o.device != "auto" && o.device != "cpu" && o.device != "cuda") {
    return absl::InvalidArgumentError(
        absl::StrCat("--device must be auto, cpu or cuda, got '", o.device, "'"));
  }
  if (o.memory_bytes < (uint64_t{1} << 20)) {
    return absl::InvalidArgumentError("--memory must be at least 1M");
  }
  return absl::OkStatus();
}

absl::StatusOr<TrainReport> TrainPredictor(const TrainPredictorOptions& options) {
  if (absl::Status s = ValidateTrainPredictorOptions(options); !s.ok()) return s;
  const Clock::time_point start = Clock::now();
  const std::string samples_path =
      options.samples_path.empty() ? DefaultSamples(options.model_path) : options.samples_path;
  const std::string output_path =
      options.output_path.empty() ? DefaultPredictorPath(options.model_path) : options.output_path;
  {
    const OutputFile outputs[] = {{"-o", output_path, ArtifactKind::kPredictor}};
    const InputFile inputs[] = {{"the model", options.model_path},
                                {"the sample file", samples_path}};
    if (absl::Status s = CheckOutputs(outputs, inputs); !s.ok()) return s;
  }

  ModelLoadOptions load;
  load.require_vocabulary = false;
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(options.model_path, load);
  if (!model.ok()) return model.status();
  const ModelConfig& config = (*model)->config();
  const std::string digest = (*model)->file().ContentDigestHex();

  absl::StatusOr<std::unique_ptr<SampleFileReader>> reader =
      SampleFileReader::Open(samples_path, digest);
  if (!reader.ok()) return reader.status();
  const SampleFileReader& samples = **reader;
  if (samples.n_layers() != config.n_layers || samples.dim() != config.dim ||
      samples.n_ff() != config.n_ff) {
    return absl::FailedPreconditionError(
        absl::StrCat(samples_path, ": samples have ", samples.n_layers(), " layers, dim ",
                     samples.dim(), " and n_ff ", samples.n_ff(), ", but the model has ",
                     config.n_layers, ", ", config.dim, " and ", config.n_ff));
  }
  if (config.dim % GetDTypeInfo(options.dtype).block_elements != 0) {
    return absl::InvalidArgumentError(absl::StrCat("--dtype ", Sv(DTypeName(options.dtype)),
                                                   ": the model's dim ", config.dim,
                                                   " is not a multiple of its block"));
  }

  bool use_cuda = false;
  if (options.device == "cuda" || options.device == "auto") use_cuda = TorchCudaAvailable();
  if (options.device == "cuda" && !use_cuda) {
    return absl::FailedPreconditionError(
        "--device cuda: this LibTorch has no usable CUDA device (Debian's libtorch is CPU-only)");
  }
  const int threads = options.threads > 0
                          ? options.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  SetTorchThreads(threads);
  cpu::SetThreads(threads);

  TrainReport report;
  report.model_path = options.model_path;
  report.samples_path = samples_path;
  report.output_path = output_path;
  report.model_digest = digest;
  report.dtype = std::string(DTypeName(options.dtype));
  report.device = use_cuda ? "cuda" : "cpu";
  report.torch_version = TorchVersion();
  report.threads = threads;
  report.rank_mode = options.rank > 0 ? absl::StrCat(options.rank) : "auto";
  report.target_recall = options.target_recall;
  report.powerinfer_compatible = options.powerinfer_compatible;
  report.epochs = options.epochs;
  report.seed = options.seed;
  report.dim = config.dim;
  report.n_ff = config.n_ff;
  report.ffn_bytes_per_layer = (*model)->layer(0).FfnBytes();

  SampleStreamOptions stream_options;
  stream_options.seed = options.seed;
  stream_options.validation_fraction = options.validation_fraction;
  stream_options.memory_bytes = options.memory_bytes;

  // Reserved up front: the layers' spans point into these buffers.
  auto storage = std::make_shared<std::vector<EncodedLayer>>();
  storage->reserve(static_cast<size_t>(config.n_layers));
  PredictorWeights predictor;
  predictor.model_digest = digest;
  predictor.dim = config.dim;
  predictor.n_ff = config.n_ff;
  predictor.dtype = options.dtype;
  predictor.target_recall = options.target_recall;
  predictor.fire_rule = samples.metadata().GetString("samples.fire_rule").value_or("");
  // --dtype auto trains in f16 and also tries q8_0 where its blocks fit (below).
  // (Not for --powerinfer-compatible, whose recall is not held to the target: pi-export writes
  // its fc1/fc2 in --predictor-dtype anyway.)
  const bool q8_candidate = options.dtype_auto && !options.powerinfer_compatible &&
                            config.dim % GetDTypeInfo(DType::kQ8_0).block_elements == 0;
  std::vector<ChosenLayer> chosen_layers;
  for (int64_t layer = 0; layer < config.n_layers; ++layer) {
    const Clock::time_point layer_start = Clock::now();
    absl::StatusOr<std::unique_ptr<LayerSampleStream>> data =
        LayerSampleStream::Open(samples, layer, stream_options);
    if (!data.ok()) return data.status();
    const std::vector<int64_t> ranks = options.rank > 0 ? std::vector<int64_t>{options.rank}
                                                        : RankLadder(options.max_rank, config.n_ff);
    LayerTrainReport layer_report;
    layer_report.layer = layer;
    std::optional<TrainedRank> chosen;
    double best_cost = 0;
    const double ffn_bytes = static_cast<double>((*model)->layer(layer).FfnBytes());
    for (int64_t rank : ranks) {
      absl::StatusOr<uint64_t> own = PredictorBytes(options.dtype, config.dim, config.n_ff, rank);
      if (!own.ok()) return own.status();
      // Its bytes alone reach the best cost: no density it could reach makes it cheaper.
      if (chosen && static_cast<double>(*own) >= best_cost) break;
      const Clock::time_point rank_start = Clock::now();
      absl::StatusOr<TrainedRank> trained =
          TrainRank(**data, rank, options, use_cuda, config.n_layers);
      if (!trained.ok()) return trained.status();
      const DecisionStats& d = trained->decision;
      const double cost = static_cast<double>(*own) + d.predicted_density * ffn_bytes;
      layer_report.trials.push_back(
          {rank, trained->recall_at_half, d.predicted_density, Seconds(rank_start), cost});
      const bool cheaper = !chosen || cost < best_cost;
      const bool within_margin =
          options.density_margin > 0 &&
          d.predicted_density <= (1 + options.density_margin) * d.true_density;
      if (options.progress) {
        std::fprintf(stderr,
                     "pi-train-predictor: layer %lld/%lld rank %lld: at threshold %.4f recall "
                     "%.4f, predicted density %.4f (true %.4f)%s\n",
                     static_cast<long long>(layer + 1), static_cast<long long>(config.n_layers),
                     static_cast<long long>(rank), SigmoidOf(d.logit_threshold), d.recall,
                     d.predicted_density, d.true_density,
                     ranks.size() == 1
                         ? ""
                         : absl::StrFormat(", expected %.1f KB per token%s", cost / 1e3,
                                           cheaper ? " (the lowest so far)" : "")
                               .c_str());
      }
      if (!cheaper) break;  // the cost rose: larger ranks only add bytes
      chosen = *std::move(trained);
      best_cost = cost;
      if (within_margin) break;
    }
    ChosenLayer c{*std::move(chosen), std::nullopt, std::move(layer_report),
                  (*data)->train_samples(), (*data)->validation_samples()};
    if (q8_candidate && c.trained.encoded.rank % GetDTypeInfo(DType::kQ8_0).block_elements == 0) {
      absl::StatusOr<TrainedRank> q8 =
          EncodeAndDecide(**data, c.trained.weights, DType::kQ8_0, DecisionTarget(options));
      if (!q8.ok()) return q8.status();
      c.q8 = *std::move(q8);
    }
    c.report.seconds = Seconds(layer_start);
    chosen_layers.push_back(std::move(c));
  }
  // --dtype auto: q8_0 (about half the bytes of f16) when it holds the target recall in every
  // layer at a predicted density at most kQ8DensitySlack above f16's; a file has one dtype.
  bool use_q8 = q8_candidate && !chosen_layers.empty();
  for (const ChosenLayer& c : chosen_layers) {
    use_q8 = use_q8 && c.q8.has_value() && c.q8->decision.recall >= options.target_recall &&
             c.q8->decision.predicted_density <=
                 (1 + kQ8DensitySlack) * c.trained.decision.predicted_density;
  }
  if (use_q8) {
    predictor.dtype = DType::kQ8_0;
    report.dtype = std::string(DTypeName(DType::kQ8_0));
  }
  for (ChosenLayer& c : chosen_layers) {
    const TrainedRank& chosen = use_q8 ? *c.q8 : c.trained;
    const int64_t layer = static_cast<int64_t>(predictor.layers.size());
    storage->push_back(chosen.encoded);
    const EncodedLayer& e = storage->back();
    PredictorLayer p;
    p.rank = e.rank;
    p.logit_threshold = chosen.decision.logit_threshold;
    p.threshold = SigmoidOf(p.logit_threshold);
    p.w1 = e.w1;
    p.b1 = e.b1;
    p.w2 = e.w2;
    p.b2 = e.b2;
    p.report = {.recall = chosen.decision.recall,
                .precision = chosen.decision.precision,
                .predicted_density = chosen.decision.predicted_density,
                .true_density = chosen.decision.true_density,
                .train_samples = c.train_samples,
                .validation_samples = c.validation_samples};
    predictor.layers.push_back(p);

    LayerTrainReport& layer_report = c.report;
    layer_report.rank = p.rank;
    layer_report.threshold = p.threshold;
    layer_report.logit_threshold = p.logit_threshold;
    layer_report.recall = p.report.recall;
    layer_report.precision = p.report.precision;
    layer_report.predicted_density = p.report.predicted_density;
    layer_report.true_density = p.report.true_density;
    layer_report.recall_at_half = chosen.recall_at_half;
    layer_report.train_samples = p.report.train_samples;
    layer_report.validation_samples = p.report.validation_samples;
    layer_report.bytes = predictor.LayerBytes(layer);
    report.total_bytes += layer_report.bytes;
    report.layers.push_back(std::move(layer_report));
  }
  predictor.storage = storage;

  Metadata provenance;
  provenance.SetString(keys::kProvenanceTool, "pi-train-predictor");
  provenance.SetString(keys::kProvenanceToolVersion, PINFER_VERSION);
  if (!options.command_line.empty()) {
    provenance.SetString(keys::kProvenanceArguments, options.command_line);
  }
  provenance.SetString(keys::kProvenanceSource, samples_path);
  if (absl::Status s = predictor.Write(output_path, provenance); !s.ok()) return s;
  report.seconds = Seconds(start);
  return report;
}

}  // namespace pinfer
