#include "tools/train_predictor/powerinfer_import.h"

#include <cmath>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "format/checksum.h"
#include "format/mapped_file.h"
#include "format/output_check.h"
#include "format/quant.h"
#include "format/strings.h"
#include "runtime/model/model.h"
#include "runtime/model/model_config.h"
#include "runtime/model/predictor_weights.h"
#include "tools/convert/gguf_file.h"
#include "tools/train_predictor/powerinfer_layout.h"

namespace pinfer {
namespace {

// A 2-D GGUF tensor decoded to f32, row-major [rows, cols].
struct DecodedMatrix {
  int64_t rows = 0, cols = 0;
  std::vector<float> values;
};

absl::StatusOr<DecodedMatrix> DecodeGgufMatrix(const GgufFile& gguf, const std::string& name) {
  const GgufTensorInfo* info = gguf.FindTensor(name);
  if (info == nullptr) {
    return absl::NotFoundError(absl::StrCat(gguf.name(), ": no tensor '", name, "'"));
  }
  const GgmlTypeInfo* type = FindGgmlType(info->ggml_type);  // known: Parse() checked
  if (!type->dtype) {
    return absl::InvalidArgumentError(
        absl::StrCat(gguf.name(), ": tensor '", name, "' has type ", Sv(type->name),
                     ", which pinfer cannot read (supported: F32, F16, BF16, Q8_0, Q4_0)"));
  }
  if (info->ne.size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(gguf.name(), ": tensor '", name, "' has ",
                                                   info->ne.size(), " dimensions, expected 2"));
  }
  DecodedMatrix m;
  m.cols = static_cast<int64_t>(info->ne[0]);
  m.rows = static_cast<int64_t>(info->ne[1]);
  absl::StatusOr<uint64_t> row_bytes = RowBytes(*type->dtype, static_cast<uint64_t>(m.cols));
  if (!row_bytes.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(gguf.name(), ": tensor '", name, "': ", row_bytes.status().message()));
  }
  std::span<const uint8_t> data = gguf.TensorData(*info);
  m.values.resize(static_cast<size_t>(m.rows * m.cols));
  for (int64_t r = 0; r < m.rows; ++r) {
    if (absl::Status s =
            DecodeRow(data.data() + static_cast<uint64_t>(r) * *row_bytes,
                      static_cast<size_t>(m.cols), *type->dtype, m.values.data() + r * m.cols);
        !s.ok()) {
      return s;
    }
  }
  return m;
}

// The layer's stored weights and zero biases, which the PredictorLayer spans point into.
struct ImportedLayer {
  std::vector<uint8_t> w1, w2;
  std::vector<float> b1, b2;
};

// model.pi must be pi-convert's conversion of this very GGUF: its provenance records the digest of
// each source file.
absl::Status CheckConvertedFrom(const Model& model, const std::string& gguf_path,
                                std::span<const uint8_t> gguf_bytes) {
  const std::string digest = ChecksumHex(Checksum(gguf_bytes));
  absl::StatusOr<std::vector<std::string>> sources =
      model.file().metadata().GetStringArray(keys::kProvenanceSourceDigest);
  if (!sources.ok() || sources->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(model.path(),
                     ": the model records no source digest, so it cannot be checked "
                     "against ",
                     gguf_path, " (convert the GGUF with pi-convert)"));
  }
  for (const std::string& s : *sources) {
    if (s == digest) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat(model.path(), " was not converted from ", gguf_path, " (its source digest ",
                   absl::StrJoin(*sources, ", "), ", the GGUF's ", digest,
                   "): convert the GGUF with pi-convert and import into that model"));
}

}  // namespace

std::string ImportPredictorReport::ToText() const {
  std::string out = absl::StrFormat(
      "imported PowerInfer's predictors of %s into %s\n"
      "  model %s (digest %s), %d layers, ranks %s, dtype %s, %.1f KB\n"
      "  threshold %g (%s): %s\n",
      gguf_path, output_path, model_path, model_digest, ranks.size(), absl::StrJoin(ranks, ","),
      dtype, static_cast<double>(total_bytes) / 1e3, threshold, threshold_source,
      exact ? "the same decision as PowerInfer's for every neuron"
            : "approximate (PowerInfer compares its un-normalized logits with the threshold; a "
              "non-zero threshold scales with the token's RMS)");
  return out;
}

nlohmann::json ImportPredictorReport::ToJson() const {
  return {{"model", model_path},
          {"gguf", gguf_path},
          {"output", output_path},
          {"model_digest", model_digest},
          {"dtype", dtype},
          {"threshold", threshold},
          {"threshold_source", threshold_source},
          {"exact", exact},
          {"ranks", ranks},
          {"bytes", total_bytes}};
}

absl::StatusOr<ImportPredictorReport> ImportPowerInferPredictor(
    const ImportPredictorOptions& options) {
  const std::string output_path =
      options.output_path.empty() ? DefaultPredictorPath(options.model_path) : options.output_path;
  {
    const OutputFile outputs[] = {{"-o", output_path, ArtifactKind::kPredictor}};
    const InputFile inputs[] = {{"the model", options.model_path},
                                {"the PowerInfer GGUF", options.gguf_path}};
    if (absl::Status s = CheckOutputs(outputs, inputs); !s.ok()) return s;
  }
  if (options.dtype != DType::kF32 && options.dtype != DType::kF16 &&
      options.dtype != DType::kQ8_0) {
    return absl::InvalidArgumentError(absl::StrCat("--dtype ", Sv(DTypeName(options.dtype)),
                                                   ": the import stores f32, f16 or q8_0"));
  }
  ModelLoadOptions load;
  load.require_vocabulary = false;
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(options.model_path, load);
  if (!model.ok()) return model.status();
  const ModelConfig& c = (*model)->config();

  absl::StatusOr<std::unique_ptr<MappedFile>> mapped = MappedFile::Open(options.gguf_path);
  if (!mapped.ok()) return mapped.status();
  absl::StatusOr<GgufFile> gguf = GgufFile::Parse((*mapped)->bytes(), options.gguf_path);
  if (!gguf.ok()) return gguf.status();
  if (gguf->FindTensor(powerinfer::Fc1(0)) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        options.gguf_path, ": not a PowerInfer GGUF with predictors (it has no tensor '",
        powerinfer::Fc1(0), "')"));
  }
  if (absl::Status s = CheckConvertedFrom(**model, options.gguf_path, (*mapped)->bytes()); !s.ok())
    return s;
  if (c.norm != NormKind::kRms) {
    // OPT's and ReluFalcon's predictors read the residual before a LayerNorm, which subtracts the
    // mean and adds a bias: no W1 on the normalized input equals them (fc1/g holds for rmsnorm).
    return absl::InvalidArgumentError(absl::StrCat(
        options.gguf_path, ": PowerInfer's ", c.architecture,
        " predictor reads the residual before the LayerNorm, pinfer's the normalized input: it "
        "cannot be imported (train one with pi-train-predictor)"));
  }
  if (c.norm_act.kind != ActivationKind::kNone) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.model_path,
                     ": the model applies an activation after ffn_norm, which PowerInfer's "
                     "predictors do not see (convert without --norm-act)"));
  }

  ImportPredictorReport report;
  report.model_path = options.model_path;
  report.gguf_path = options.gguf_path;
  report.output_path = output_path;
  report.model_digest = (*model)->file().ContentDigestHex();
  report.dtype = std::string(DTypeName(options.dtype));
  report.threshold_source = "default";
  if (options.threshold_override) {
    report.threshold = *options.threshold_override;
    report.threshold_source = powerinfer::kThresholdEnvironment;
  } else if (gguf->Has(powerinfer::kSparseThresholdKey)) {
    absl::StatusOr<double> t = gguf->GetFloat(powerinfer::kSparseThresholdKey);
    if (!t.ok()) return t.status();
    report.threshold = static_cast<float>(*t);
    report.threshold_source = powerinfer::kSparseThresholdKey;
  }
  if (!std::isfinite(report.threshold)) {
    return absl::InvalidArgumentError(absl::StrCat(report.threshold_source, ": the threshold ",
                                                   report.threshold, " is not a finite number"));
  }
  report.exact = report.threshold == 0.0f;

  auto storage = std::make_shared<std::vector<ImportedLayer>>();
  storage->reserve(static_cast<size_t>(c.n_layers));
  PredictorWeights predictor;
  predictor.model_digest = report.model_digest;
  predictor.dim = c.dim;
  predictor.n_ff = c.n_ff;
  predictor.dtype = options.dtype;
  predictor.fire_rule = "nonzero";  // PowerInfer's models are ReLU models
  // PowerInfer publishes no recall target for its predictors; 1 (the artifact needs one in (0, 1])
  // says that none was traded away here, and the report arrays stay zero (not measured).
  predictor.target_recall = 1.0;
  for (int64_t l = 0; l < c.n_layers; ++l) {
    absl::StatusOr<DecodedMatrix> fc1 = DecodeGgufMatrix(*gguf, powerinfer::Fc1(l));
    if (!fc1.ok()) return fc1.status();
    absl::StatusOr<DecodedMatrix> fc2 = DecodeGgufMatrix(*gguf, powerinfer::Fc2(l));
    if (!fc2.ok()) return fc2.status();
    if (fc1->cols != c.dim || fc2->rows != c.n_ff || fc2->cols != fc1->rows) {
      return absl::InvalidArgumentError(absl::StrCat(
          options.gguf_path, ": layer ", l, "'s predictor has fc1 [", fc1->rows, ", ", fc1->cols,
          "] and fc2 [", fc2->rows, ", ", fc2->cols, "], expected fc1 [rank, ", c.dim,
          "] and fc2 [", c.n_ff, ", rank] for this model (dim ", c.dim, ", n_ff ", c.n_ff, ")"));
    }
    const int64_t rank = fc1->rows;
    // Fold ffn_norm's gain into fc1 (header): W1[r][j] = fc1[r][j] / g[j].
    const float* gain = (*model)->layer(l).ffn_norm;
    for (int64_t j = 0; j < c.dim; ++j) {
      if (!(gain[j] != 0.0f) || !std::isfinite(gain[j])) {
        return absl::InvalidArgumentError(absl::StrCat(
            options.model_path, ": layer ", l, "'s ffn_norm weight ", j, " is ", gain[j],
            ": PowerInfer's predictor input cannot be recovered from the normalized one"));
      }
    }
    for (int64_t r = 0; r < rank; ++r) {
      for (int64_t j = 0; j < c.dim; ++j) fc1->values[r * c.dim + j] /= gain[j];
    }
    ImportedLayer& stored = storage->emplace_back();
    absl::StatusOr<std::vector<uint8_t>> w1 = EncodeMatrix(fc1->values, rank, c.dim, options.dtype);
    if (!w1.ok()) return w1.status();
    absl::StatusOr<std::vector<uint8_t>> w2 =
        EncodeMatrix(fc2->values, c.n_ff, rank, options.dtype);
    if (!w2.ok()) return w2.status();
    stored.w1 = *std::move(w1);
    stored.w2 = *std::move(w2);
    stored.b1.assign(static_cast<size_t>(rank), 0.0f);
    stored.b2.assign(static_cast<size_t>(c.n_ff), 0.0f);
    PredictorLayer p;
    p.rank = rank;
    p.logit_threshold = report.threshold;
    p.threshold = SigmoidOf(p.logit_threshold);
    p.w1 = stored.w1;
    p.b1 = stored.b1;
    p.w2 = stored.w2;
    p.b2 = stored.b2;
    predictor.layers.push_back(p);
    report.ranks.push_back(rank);
  }
  if (gguf->FindTensor(powerinfer::Fc1(c.n_layers)) != nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(options.gguf_path,
                                                   ": it has predictors for more than the model's ",
                                                   c.n_layers, " layers"));
  }
  predictor.storage = storage;
  for (int64_t l = 0; l < predictor.n_layers(); ++l) report.total_bytes += predictor.LayerBytes(l);

  Metadata provenance;
  provenance.SetString(keys::kProvenanceTool, "pi-train-predictor --import");
  provenance.SetString(keys::kProvenanceToolVersion, PINFER_VERSION);
  if (!options.command_line.empty()) {
    provenance.SetString(keys::kProvenanceArguments, options.command_line);
  }
  provenance.SetString(keys::kProvenanceSource, options.gguf_path);
  provenance.SetString("predictor.source_format", "PowerInfer GGUF fc1/fc2");
  if (absl::Status s = predictor.Write(output_path, provenance); !s.ok()) return s;
  return report;
}

}  // namespace pinfer
