#include "runtime/model/predictor_weights.h"

#include <cmath>
#include <memory>

#include "absl/strings/str_cat.h"
#include "format/pi_file.h"
#include "format/pi_writer.h"
#include "format/strings.h"
#include "runtime/model/artifact_file.h"
#include "runtime/model/model.h"
#include "runtime/model/model_config.h"

namespace pinfer {
namespace {

constexpr char kNLayers[] = "predictor.n_layers";
constexpr char kDim[] = "predictor.dim";
constexpr char kNFf[] = "predictor.n_ff";
constexpr char kRank[] = "predictor.rank";
constexpr char kLogitThreshold[] = "predictor.logit_threshold";
constexpr char kThreshold[] = "predictor.threshold";
constexpr char kTargetRecall[] = "predictor.target_recall";
constexpr char kFireRule[] = "predictor.fire_rule";
constexpr char kRecall[] = "predictor.recall";
constexpr char kPrecision[] = "predictor.precision";
constexpr char kPredictedDensity[] = "predictor.predicted_density";
constexpr char kTrueDensity[] = "predictor.true_density";
constexpr char kTrainSamples[] = "predictor.train_samples";
constexpr char kValidationSamples[] = "predictor.validation_samples";

// Largest |logit| a threshold may have: beyond it sigmoid() rounds to 0 or 1 in f32 and the
// probability form of the decision would no longer say the same thing.
constexpr float kMaxLogitThreshold = 16.0f;

std::span<const uint8_t> AsBytes(std::span<const float> values) {
  return {reinterpret_cast<const uint8_t*>(values.data()), values.size() * sizeof(float)};
}

uint64_t Bytes(DType dtype, int64_t rows, int64_t cols) {
  return RowBytes(dtype, static_cast<uint64_t>(cols)).value_or(0) * static_cast<uint64_t>(rows);
}

}  // namespace

std::string DefaultPredictorPath(const std::string& model_path) {
  std::string base = model_path;
  if (base.ends_with(".pi")) base.resize(base.size() - 3);
  return base + ".predictor.pi";
}

std::string PredictorTensorName(int64_t layer, const char* part) {
  return absl::StrCat("blk.", layer, ".predictor.", part);
}

float LogitOf(double probability) {
  return static_cast<float>(std::log(probability / (1.0 - probability)));
}
float SigmoidOf(double logit) { return static_cast<float>(1.0 / (1.0 + std::exp(-logit))); }

cpu::PredictorView PredictorWeights::View(int64_t l) const {
  const PredictorLayer& layer = layers[static_cast<size_t>(l)];
  cpu::PredictorView view;
  view.w1 = cpu::MakeMatrixView(dtype, layer.rank, dim, layer.w1.data());
  view.b1 = layer.b1.data();
  view.w2 = cpu::MakeMatrixView(dtype, n_ff, layer.rank, layer.w2.data());
  view.b2 = layer.b2.data();
  view.logit_threshold = layer.logit_threshold;
  return view;
}

uint64_t PredictorWeights::LayerBytes(int64_t l) const {
  const PredictorLayer& layer = layers[static_cast<size_t>(l)];
  return layer.w1.size() + layer.w2.size() + 4 * (layer.b1.size() + layer.b2.size());
}

absl::Status PredictorWeights::Validate() const {
  if (layers.empty() || dim <= 0 || n_ff <= 0) {
    return absl::InvalidArgumentError("predictor has no layers, no input or no neurons");
  }
  const DTypeInfo& info = GetDTypeInfo(dtype);
  if (dtype == DType::kI32 || dtype == DType::kU8) {
    return absl::InvalidArgumentError(
        absl::StrCat("predictor weights must be a float or quantized dtype, not ", Sv(info.name)));
  }
  if (dim % info.block_elements != 0) {
    return absl::InvalidArgumentError(absl::StrCat("predictor dim ", dim, " is not a multiple of ",
                                                   Sv(info.name), "'s block of ",
                                                   info.block_elements));
  }
  if (!(target_recall > 0 && target_recall <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("predictor target recall ", target_recall, " is outside (0, 1]"));
  }
  for (size_t l = 0; l < layers.size(); ++l) {
    const PredictorLayer& layer = layers[l];
    const std::string where = absl::StrCat("predictor layer ", l, ": ");
    if (layer.rank <= 0 || layer.rank % info.block_elements != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "rank ", layer.rank, " must be positive and a multiple of ",
                       Sv(info.name), "'s block of ", info.block_elements));
    }
    if (layer.w1.size() != Bytes(dtype, layer.rank, dim) ||
        layer.w2.size() != Bytes(dtype, n_ff, layer.rank) ||
        layer.b1.size() != static_cast<size_t>(layer.rank) ||
        layer.b2.size() != static_cast<size_t>(n_ff)) {
      return absl::InvalidArgumentError(absl::StrCat(where, "weights or biases do not match rank ",
                                                     layer.rank, ", dim ", dim, " and n_ff ",
                                                     n_ff));
    }
    if (!(std::abs(layer.logit_threshold) <= kMaxLogitThreshold)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "logit threshold ", layer.logit_threshold, " is outside [-",
                       kMaxLogitThreshold, ", ", kMaxLogitThreshold, "]"));
    }
    if (std::abs(layer.threshold - SigmoidOf(layer.logit_threshold)) > 1e-6f) {
      return absl::InvalidArgumentError(absl::StrCat(where, "threshold ", layer.threshold,
                                                     " is not sigmoid(logit threshold ",
                                                     layer.logit_threshold, ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status PredictorWeights::Write(const std::string& path, const Metadata& extra) const {
  if (absl::Status s = Validate(); !s.ok()) return s;
  Metadata m = extra;
  m.SetString(keys::kModelDigest, model_digest);
  m.SetInt(kNLayers, n_layers());
  m.SetInt(kDim, dim);
  m.SetInt(kNFf, n_ff);
  m.SetFloat(kTargetRecall, target_recall);
  if (!fire_rule.empty()) m.SetString(kFireRule, fire_rule);
  std::vector<int64_t> ranks, train, validation;
  std::vector<float> logit_thresholds, thresholds, recall, precision, predicted, truth;
  std::vector<TensorSpec> specs;
  for (int64_t l = 0; l < n_layers(); ++l) {
    const PredictorLayer& layer = layers[static_cast<size_t>(l)];
    ranks.push_back(layer.rank);
    logit_thresholds.push_back(layer.logit_threshold);
    thresholds.push_back(layer.threshold);
    recall.push_back(static_cast<float>(layer.report.recall));
    precision.push_back(static_cast<float>(layer.report.precision));
    predicted.push_back(static_cast<float>(layer.report.predicted_density));
    truth.push_back(static_cast<float>(layer.report.true_density));
    train.push_back(layer.report.train_samples);
    validation.push_back(layer.report.validation_samples);
    const uint64_t rank = static_cast<uint64_t>(layer.rank);
    const uint64_t d = static_cast<uint64_t>(dim), f = static_cast<uint64_t>(n_ff);
    specs.push_back({PredictorTensorName(l, "w1"), dtype, {rank, d}});
    specs.push_back({PredictorTensorName(l, "b1"), DType::kF32, {rank}});
    specs.push_back({PredictorTensorName(l, "w2"), dtype, {f, rank}});
    specs.push_back({PredictorTensorName(l, "b2"), DType::kF32, {f}});
  }
  m.SetIntArray(kRank, std::move(ranks));
  m.SetFloatArray(kLogitThreshold, std::move(logit_thresholds));
  m.SetFloatArray(kThreshold, std::move(thresholds));
  m.SetFloatArray(kRecall, std::move(recall));
  m.SetFloatArray(kPrecision, std::move(precision));
  m.SetFloatArray(kPredictedDensity, std::move(predicted));
  m.SetFloatArray(kTrueDensity, std::move(truth));
  m.SetIntArray(kTrainSamples, std::move(train));
  m.SetIntArray(kValidationSamples, std::move(validation));

  absl::StatusOr<std::unique_ptr<PiWriter>> writer =
      PiWriter::Create(path, ArtifactKind::kPredictor, std::move(m), std::move(specs));
  if (!writer.ok()) return writer.status();
  for (int64_t l = 0; l < n_layers(); ++l) {
    const PredictorLayer& layer = layers[static_cast<size_t>(l)];
    for (auto [part, bytes] :
         {std::pair{"w1", std::span<const uint8_t>(layer.w1)}, std::pair{"b1", AsBytes(layer.b1)},
          std::pair{"w2", std::span<const uint8_t>(layer.w2)},
          std::pair{"b2", AsBytes(layer.b2)}}) {
      if (absl::Status s =
              (*writer)->Write(PredictorTensorName(l, part), bytes.data(), bytes.size());
          !s.ok()) {
        return s;
      }
    }
  }
  return (*writer)->Commit();
}

absl::StatusOr<PredictorWeights> PredictorWeights::Read(
    const std::string& path, std::optional<std::string> expected_model_digest) {
  absl::StatusOr<OpenedArtifact> opened = OpenArtifact(
      path, ArtifactKind::kPredictor, expected_model_digest, "the predictor was trained for");
  if (!opened.ok()) return opened.status();
  std::shared_ptr<const PiFile> file = std::move(opened->file);
  PredictorWeights p;
  p.storage = file;
  p.model_digest = opened->model_digest;
  absl::StatusOr<int64_t> n_layers = file->GetInt(kNLayers);
  if (!n_layers.ok()) return n_layers.status();
  absl::StatusOr<int64_t> dim = file->GetInt(kDim);
  if (!dim.ok()) return dim.status();
  absl::StatusOr<int64_t> n_ff = file->GetInt(kNFf);
  if (!n_ff.ok()) return n_ff.status();
  absl::StatusOr<double> target_recall = file->GetFloat(kTargetRecall);
  if (!target_recall.ok()) return target_recall.status();
  if (*n_layers <= 0 || *n_layers > (1 << 16) || *dim <= 0 || *n_ff <= 0) {
    return absl::DataLossError(absl::StrCat(path, ": predictor has ", *n_layers, " layers, dim ",
                                            *dim, " and n_ff ", *n_ff));
  }
  p.dim = *dim;
  p.n_ff = *n_ff;
  p.target_recall = *target_recall;
  p.fire_rule = file->GetString(kFireRule).value_or("");

  const Metadata& m = file->metadata();
  const size_t layers = static_cast<size_t>(*n_layers);
  // Per-layer arrays: required ones must exist; the report ones may be absent (zeros then).
  auto int_array = [&](const char* key, bool required) -> absl::StatusOr<std::vector<int64_t>> {
    absl::StatusOr<std::vector<int64_t>> v = m.GetIntArray(key);
    if (!v.ok()) {
      if (!required && absl::IsNotFound(v.status())) return std::vector<int64_t>(layers, 0);
      return file->Annotate(v.status());
    }
    if (v->size() != layers) {
      return absl::DataLossError(
          absl::StrCat(path, ": ", key, " has ", v->size(), " entries for ", layers, " layers"));
    }
    return v;
  };
  auto float_array = [&](const char* key, bool required) -> absl::StatusOr<std::vector<float>> {
    absl::StatusOr<std::vector<float>> v = m.GetFloatArray(key);
    if (!v.ok()) {
      if (!required && absl::IsNotFound(v.status())) return std::vector<float>(layers, 0.0f);
      return file->Annotate(v.status());
    }
    if (v->size() != layers) {
      return absl::DataLossError(
          absl::StrCat(path, ": ", key, " has ", v->size(), " entries for ", layers, " layers"));
    }
    return v;
  };
  absl::StatusOr<std::vector<int64_t>> ranks = int_array(kRank, true);
  if (!ranks.ok()) return ranks.status();
  absl::StatusOr<std::vector<float>> logit_thresholds = float_array(kLogitThreshold, true);
  if (!logit_thresholds.ok()) return logit_thresholds.status();
  absl::StatusOr<std::vector<float>> thresholds = float_array(kThreshold, true);
  if (!thresholds.ok()) return thresholds.status();
  absl::StatusOr<std::vector<float>> recall = float_array(kRecall, false);
  if (!recall.ok()) return recall.status();
  absl::StatusOr<std::vector<float>> precision = float_array(kPrecision, false);
  if (!precision.ok()) return precision.status();
  absl::StatusOr<std::vector<float>> predicted = float_array(kPredictedDensity, false);
  if (!predicted.ok()) return predicted.status();
  absl::StatusOr<std::vector<float>> truth = float_array(kTrueDensity, false);
  if (!truth.ok()) return truth.status();
  absl::StatusOr<std::vector<int64_t>> train = int_array(kTrainSamples, false);
  if (!train.ok()) return train.status();
  absl::StatusOr<std::vector<int64_t>> validation = int_array(kValidationSamples, false);
  if (!validation.ok()) return validation.status();

  std::optional<DType> dtype;
  for (size_t l = 0; l < layers; ++l) {
    PredictorLayer layer;
    layer.rank = (*ranks)[l];
    if (layer.rank <= 0 || layer.rank > (1 << 24)) {
      return absl::DataLossError(absl::StrCat(path, ": layer ", l, " has rank ", layer.rank));
    }
    const uint64_t rank = static_cast<uint64_t>(layer.rank);
    const uint64_t d = static_cast<uint64_t>(p.dim), f = static_cast<uint64_t>(p.n_ff);
    const int64_t li = static_cast<int64_t>(l);
    const uint64_t w1_shape[] = {rank, d}, b1_shape[] = {rank}, w2_shape[] = {f, rank},
                   b2_shape[] = {f};
    absl::StatusOr<const TensorInfo*> w1 =
        file->GetChecked(PredictorTensorName(li, "w1"), w1_shape);
    if (!w1.ok()) return w1.status();
    absl::StatusOr<const TensorInfo*> b1 =
        file->GetChecked(PredictorTensorName(li, "b1"), b1_shape);
    if (!b1.ok()) return b1.status();
    absl::StatusOr<const TensorInfo*> w2 =
        file->GetChecked(PredictorTensorName(li, "w2"), w2_shape);
    if (!w2.ok()) return w2.status();
    absl::StatusOr<const TensorInfo*> b2 =
        file->GetChecked(PredictorTensorName(li, "b2"), b2_shape);
    if (!b2.ok()) return b2.status();
    if (!dtype) dtype = (*w1)->dtype;
    if ((*w1)->dtype != *dtype || (*w2)->dtype != *dtype) {
      return absl::DataLossError(absl::StrCat(
          path, ": layer ", l, "'s weights are ", Sv(DTypeName((*w1)->dtype)), " and ",
          Sv(DTypeName((*w2)->dtype)), ", expected ", Sv(DTypeName(*dtype)), " for both"));
    }
    if ((*b1)->dtype != DType::kF32 || (*b2)->dtype != DType::kF32) {
      return absl::DataLossError(absl::StrCat(path, ": layer ", l, "'s biases must be f32"));
    }
    layer.w1 = file->Data(**w1);
    layer.w2 = file->Data(**w2);
    layer.b1 = {file->DataAs<float>(**b1), rank};
    layer.b2 = {file->DataAs<float>(**b2), f};
    layer.logit_threshold = (*logit_thresholds)[l];
    layer.threshold = (*thresholds)[l];
    layer.report = {.recall = (*recall)[l],
                    .precision = (*precision)[l],
                    .predicted_density = (*predicted)[l],
                    .true_density = (*truth)[l],
                    .train_samples = (*train)[l],
                    .validation_samples = (*validation)[l]};
    p.layers.push_back(layer);
  }
  p.dtype = *dtype;
  if (absl::Status s = p.Validate(); !s.ok()) return file->Annotate(s);
  return p;
}

absl::StatusOr<PredictorWeights> PredictorWeights::ReadFor(const std::string& path,
                                                           const Model& model) {
  absl::StatusOr<PredictorWeights> p = Read(path, model.file().ContentDigestHex());
  if (!p.ok()) return p.status();
  const ModelConfig& c = model.config();
  if (p->n_layers() != c.n_layers || p->dim != c.dim || p->n_ff != c.n_ff) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": a predictor for ", p->n_layers(), " layers of dim ", p->dim, " and n_ff ", p->n_ff,
        ", the model has ", c.n_layers, " layers of dim ", c.dim, " and n_ff ", c.n_ff));
  }
  return p;
}

}  // namespace pinfer
