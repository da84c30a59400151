#include "tools/export/gguf_export.h"

#include <cstdio>
#include <functional>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "format/output_check.h"
#include "format/quant.h"
#include "format/strings.h"
#include "runtime/model/model.h"
#include "runtime/model/predictor_weights.h"
#include "runtime/model/tensor_names.h"
#include "tools/convert/gguf_writer.h"
#include "tools/export/export_metadata.h"
#include "tools/train_predictor/powerinfer_layout.h"

namespace pinfer {
namespace {

namespace tn = tensor_names;

// How one GGUF tensor is made.
enum class Source {
  kStored,      // a .pi tensor's bytes as stored (AppendPiTensor)
  kReencoded,   // a .pi tensor decoded and encoded in another dtype
  kTransposed,  // ffn_down_t decoded, transposed to ffn_down, encoded
  kFc1,         // the predictor's W1 · diag(ffn_norm)
  kFc2,         // the predictor's W2
  kRopeFreqs,   // ModelConfig::rope_freq_factors as llama.cpp's rope_freqs tensor (Llama 3.1)
};

struct Job {
  TensorSpec spec;  // GGUF name, dtype, row-major shape
  Source source = Source::kStored;
  const TensorInfo* tensor = nullptr;  // kStored, kReencoded, kTransposed
  int64_t layer = -1;                  // kFc1, kFc2
};

// The per-layer .pi suffixes that llama.cpp and PowerInfer name alike (".weight" appended).
constexpr const char* kLayerSuffixes[] = {"attn_norm",   "attn_q",   "attn_k",   "attn_v",
                                          "attn_output", "ffn_norm", "ffn_gate", "ffn_up"};

absl::StatusOr<std::vector<float>> DecodeMatrix(std::span<const uint8_t> bytes, DType dtype,
                                                int64_t rows, int64_t cols) {
  absl::StatusOr<uint64_t> row_bytes = RowBytes(dtype, static_cast<uint64_t>(cols));
  if (!row_bytes.ok()) return row_bytes.status();
  std::vector<float> out(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    if (absl::Status s = DecodeRow(bytes.data() + static_cast<uint64_t>(r) * *row_bytes,
                                   static_cast<size_t>(cols), dtype, out.data() + r * cols);
        !s.ok()) {
      return s;
    }
  }
  return out;
}

// The dtype a matrix of `cols` columns is written in: `wanted`, or f16 when its rows are not whole
// blocks of it.
DType MatrixDType(DType wanted, uint64_t cols) {
  return cols % GetDTypeInfo(wanted).block_elements == 0 ? wanted : DType::kF16;
}

// PowerInfer's predictor form (no biases, one threshold) holds `predictor` exactly, or the error
// says why not.
absl::StatusOr<float> GlobalThreshold(const PredictorWeights& predictor, const std::string& path) {
  const float t = predictor.layers[0].logit_threshold;
  for (int64_t l = 0; l < predictor.n_layers(); ++l) {
    const PredictorLayer& layer = predictor.layers[static_cast<size_t>(l)];
    auto nonzero = [](std::span<const float> v) {
      for (float x : v) {
        if (x != 0.0f) return true;
      }
      return false;
    };
    if (nonzero(layer.b1) || nonzero(layer.b2)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": layer ", l,
                       "'s predictor has biases, which PowerInfer's fc1/fc2 cannot hold "
                       "(train one with pi-train-predictor --powerinfer-compatible)"));
    }
    if (layer.logit_threshold != t) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": layer ", l, "'s logit threshold ", layer.logit_threshold,
                       " differs from layer "
                       "0's ",
                       t,
                       "; PowerInfer has one global threshold (train a predictor with "
                       "pi-train-predictor --powerinfer-compatible)"));
    }
  }
  return t;
}

absl::Status CheckActivation(const ModelConfig& c, ExportFormat format, const std::string& path) {
  // OPT and Falcon have other tensors and another forward pass than the llama GGUF this writes.
  if (c.architecture != "llama") {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": architecture '", c.architecture, "': pi-export writes llama models only"));
  }
  if (c.norm_act.kind != ActivationKind::kNone) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": the model applies ", c.norm_act.ToString(), " after its norms, which ",
        format == ExportFormat::kLlamaCpp ? "llama.cpp" : "PowerInfer", " cannot express"));
  }
  if (format == ExportFormat::kLlamaCpp && c.ffn_act.kind != ActivationKind::kSilu) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": the FFN activation is ", c.ffn_act.ToString(),
        "; llama.cpp's llama computes silu (export a ReLU model with --format powerinfer)"));
  }
  if (format == ExportFormat::kPowerInfer && c.ffn_act.kind != ActivationKind::kRelu) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": the FFN activation is ", c.ffn_act.ToString(),
                     "; PowerInfer's sparse llama computes plain relu"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string ExportReport::ToText() const {
  std::string out =
      absl::StrFormat("exported %s as a %s GGUF: %s (%d tensors, %.1f MB)\n", model_path, format,
                      output_path, tensors, static_cast<double>(bytes) / 1e6);
  if (!predictor_path.empty()) {
    absl::StrAppendFormat(&out, "  predictor %s as fc1/fc2, powerinfer.sparse_threshold %g\n",
                          predictor_path, threshold);
  }
  if (!axpy_f16.empty()) {
    absl::StrAppend(&out, "  written f16 (PowerInfer's sparse axpy reads f16 or q4_0 only): ",
                    absl::StrJoin(axpy_f16, ", "), "\n");
  }
  if (!f16_fallback.empty()) {
    absl::StrAppend(&out, "  written f16 (rows are not whole blocks of the dtype): ",
                    absl::StrJoin(f16_fallback, ", "), "\n");
  }
  for (const std::string& note : notes) absl::StrAppend(&out, "  note: ", note, "\n");
  return out;
}

nlohmann::json ExportReport::ToJson() const {
  return {{"model", model_path},
          {"output", output_path},
          {"format", format},
          {"predictor", predictor_path},
          {"bytes", bytes},
          {"tensors", tensors},
          {"f16_fallback", f16_fallback},
          {"axpy_f16", axpy_f16},
          {"threshold", threshold},
          {"notes", notes}};
}

absl::StatusOr<ExportReport> ExportGguf(const ExportOptions& options) {
  const bool powerinfer = options.format == ExportFormat::kPowerInfer;
  const std::string predictor_path = !powerinfer ? ""
                                     : options.predictor_path.empty()
                                         ? DefaultPredictorPath(options.model_path)
                                         : options.predictor_path;
  {
    const OutputFile outputs[] = {{"-o", options.output_path, std::nullopt}};
    std::vector<InputFile> inputs = {{"the model", options.model_path}};
    if (powerinfer) inputs.push_back({"the predictor", predictor_path});
    if (absl::Status s = CheckOutputs(outputs, inputs); !s.ok()) return s;
  }
  if (options.output_path.ends_with(".pi")) {
    return absl::InvalidArgumentError(
        absl::StrCat("-o ", options.output_path, ": a GGUF is written, not a .pi artifact"));
  }
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(options.model_path);
  if (!model.ok()) return model.status();
  const ModelConfig& c = (*model)->config();
  const PiFile& file = (*model)->file();
  if (absl::Status s = CheckActivation(c, options.format, options.model_path); !s.ok()) return s;

  ExportReport report;
  report.model_path = options.model_path;
  report.output_path = options.output_path;
  report.format = powerinfer ? "powerinfer" : "llama.cpp";
  std::optional<PredictorWeights> predictor;
  if (powerinfer) {
    absl::StatusOr<PredictorWeights> read = PredictorWeights::ReadFor(predictor_path, **model);
    if (!read.ok()) return read.status();
    predictor = *std::move(read);
    absl::StatusOr<float> t = GlobalThreshold(*predictor, predictor_path);
    if (!t.ok()) return t.status();
    report.threshold = *t;
    report.predictor_path = predictor_path;
    if (*t != 0.0f) {
      report.notes.push_back(absl::StrCat(
          "threshold ", *t,
          " is not 0: PowerInfer compares fc2 . relu(fc1 . h) on the residual "
          "h before ffn_norm, which is pinfer's logit times rms(h), so its decisions differ from "
          "pinfer's (they are equal at threshold 0)"));
    }
  }

  // Every tensor, in llama.cpp's order of a layer.
  std::vector<Job> jobs;
  auto add_matrix_or_vector = [&](const std::string& pi_name,
                                  const std::string& gguf_name) -> absl::Status {
    absl::StatusOr<const TensorInfo*> tensor = file.Get(pi_name);
    if (!tensor.ok()) return tensor.status();
    Job job;
    job.tensor = *tensor;
    job.spec.name = gguf_name;
    job.spec.shape = (*tensor)->shape;
    const bool matrix = (*tensor)->shape.size() == 2;
    absl::StatusOr<DType> stored = GgufDTypeFor((*tensor)->dtype);
    if (!stored.ok()) return stored.status();
    job.spec.dtype = *stored;
    // Against the GGUF dtype of the stored bytes: a q4_0x16 matrix asked for as q4_0 is copied
    // (reordered back by AppendPiTensor), not requantized.
    if (matrix && options.dtype && *options.dtype != *stored) {
      job.spec.dtype = MatrixDType(*options.dtype, (*tensor)->cols());
      if (job.spec.dtype != *options.dtype) report.f16_fallback.push_back(gguf_name);
      job.source = job.spec.dtype == *stored ? Source::kStored : Source::kReencoded;
    }
    jobs.push_back(std::move(job));
    return absl::OkStatus();
  };
  auto weight = [](const std::string& name) { return absl::StrCat(name, ".weight"); };
  if (absl::Status s = add_matrix_or_vector(tn::kTokenEmbedding, weight(tn::kTokenEmbedding));
      !s.ok()) {
    return s;
  }
  if (absl::Status s = add_matrix_or_vector(tn::kOutputNorm, weight(tn::kOutputNorm)); !s.ok())
    return s;
  if (!c.tied_embeddings) {
    if (absl::Status s = add_matrix_or_vector(tn::kOutput, weight(tn::kOutput)); !s.ok()) return s;
  } else if (powerinfer) {
    // PowerInfer's loader requires output.weight: the tied classifier is token_embd itself.
    if (absl::Status s = add_matrix_or_vector(tn::kTokenEmbedding, weight(tn::kOutput)); !s.ok())
      return s;
  }
  for (int l = 0; l < c.n_layers; ++l) {
    for (const char* suffix : kLayerSuffixes) {
      if (absl::Status s = add_matrix_or_vector(tn::Layer(l, suffix), weight(tn::Layer(l, suffix)));
          !s.ok()) {
        return s;
      }
    }
    if (powerinfer) {
      if (absl::Status s = add_matrix_or_vector(tn::FfnDownT(l), powerinfer::FfnDownT(l)); !s.ok())
        return s;
      // PowerInfer's CPU axpy over ffn_down_t (ggml.c, GGML_OP_AXPY) reads f16 or q4_0 rows only
      // and silently misreads any other type.
      Job& down = jobs.back();
      if (down.spec.dtype != DType::kF16 && down.spec.dtype != DType::kQ4_0) {
        down.spec.dtype = DType::kF16;
        down.source = Source::kReencoded;
        report.axpy_f16.push_back(down.spec.name);
      }
      const PredictorLayer& p = predictor->layers[static_cast<size_t>(l)];
      const uint64_t rank = static_cast<uint64_t>(p.rank);
      const DType fc1 = MatrixDType(options.predictor_dtype, static_cast<uint64_t>(c.dim));
      const DType fc2 = MatrixDType(options.predictor_dtype, rank);
      if (fc1 != options.predictor_dtype) report.f16_fallback.push_back(powerinfer::Fc1(l));
      if (fc2 != options.predictor_dtype) report.f16_fallback.push_back(powerinfer::Fc2(l));
      jobs.push_back({{powerinfer::Fc1(l), fc1, {rank, static_cast<uint64_t>(c.dim)}},
                      Source::kFc1,
                      nullptr,
                      l});
      jobs.push_back({{powerinfer::Fc2(l), fc2, {static_cast<uint64_t>(c.n_ff), rank}},
                      Source::kFc2,
                      nullptr,
                      l});
    } else {
      absl::StatusOr<const TensorInfo*> down = file.Get(tn::FfnDownT(l));
      if (!down.ok()) return down.status();
      const DType wanted = options.dtype.value_or((*down)->dtype);
      const DType dtype = MatrixDType(wanted, static_cast<uint64_t>(c.n_ff));
      const std::string name = weight(tn::Layer(l, "ffn_down"));
      if (dtype != wanted) report.f16_fallback.push_back(name);
      jobs.push_back({{name, dtype, {static_cast<uint64_t>(c.dim), static_cast<uint64_t>(c.n_ff)}},
                      Source::kTransposed,
                      *down,
                      l});
    }
  }

  // RoPE scaling (Llama 3's or linear, as pi-convert computed it) travels as llama.cpp's
  // rope_freqs: the per-pair divisors of the frequencies, which is what rope_freq_factors holds.
  if (!c.rope_freq_factors.empty()) {
    jobs.push_back({{"rope_freqs.weight", DType::kF32, {c.rope_freq_factors.size()}},
                    Source::kRopeFreqs,
                    nullptr,
                    -1});
  }

  std::vector<TensorSpec> specs;
  for (const Job& job : jobs) specs.push_back(job.spec);
  GgufMetadata metadata = GgufModelMetadata(c, *(*model)->vocabulary(), powerinfer);
  if (powerinfer) metadata.SetFloat32(powerinfer::kSparseThresholdKey, report.threshold);
  absl::StatusOr<std::unique_ptr<GgufWriter>> writer = GgufWriter::Create(
      options.output_path, metadata, specs, powerinfer ? GgufMagic::kPowerInfer : GgufMagic::kGguf);
  if (!writer.ok()) return writer.status();

  for (const Job& job : jobs) {
    const std::string& name = job.spec.name;
    const int64_t rows = static_cast<int64_t>(job.spec.shape.size() == 2 ? job.spec.shape[0] : 1);
    const int64_t cols = static_cast<int64_t>(job.spec.shape.back());
    if (job.source == Source::kStored) {
      if (absl::Status s =
              AppendPiTensor(**writer, name, job.tensor->dtype, cols, file.Data(*job.tensor));
          !s.ok()) {
        return s;
      }
      continue;
    }
    std::vector<float> values;
    if (job.source == Source::kReencoded) {
      absl::StatusOr<std::vector<float>> decoded =
          DecodeMatrix(file.Data(*job.tensor), job.tensor->dtype, rows, cols);
      if (!decoded.ok()) return decoded.status();
      values = *std::move(decoded);
    } else if (job.source == Source::kTransposed) {
      // Stored [n_ff, dim]; GGUF's ffn_down is [dim, n_ff].
      absl::StatusOr<std::vector<float>> decoded =
          DecodeMatrix(file.Data(*job.tensor), job.tensor->dtype, cols, rows);
      if (!decoded.ok()) return decoded.status();
      values.resize(decoded->size());
      for (int64_t i = 0; i < cols; ++i) {
        for (int64_t j = 0; j < rows; ++j) values[j * cols + i] = (*decoded)[i * rows + j];
      }
    } else if (job.source == Source::kRopeFreqs) {
      values = c.rope_freq_factors;
    } else {
      const PredictorLayer& p = predictor->layers[static_cast<size_t>(job.layer)];
      const bool fc1 = job.source == Source::kFc1;
      absl::StatusOr<std::vector<float>> decoded =
          DecodeMatrix(fc1 ? p.w1 : p.w2, predictor->dtype, rows, cols);
      if (!decoded.ok()) return decoded.status();
      values = *std::move(decoded);
      if (fc1) {
        // fc1 reads the residual before ffn_norm: W1 · diag(g) (header).
        const float* gain = (*model)->layer(job.layer).ffn_norm;
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t j = 0; j < cols; ++j) values[r * cols + j] *= gain[j];
        }
      }
    }
    absl::StatusOr<std::vector<uint8_t>> encoded = EncodeMatrix(values, rows, cols, job.spec.dtype);
    if (!encoded.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", name, "': ", encoded.status().message()));
    }
    if (absl::Status s = (*writer)->Append(name, *encoded); !s.ok()) return s;
  }
  if (absl::Status s = (*writer)->Commit(); !s.ok()) return s;
  report.bytes = (*writer)->total_bytes();
  report.tensors = static_cast<int64_t>(jobs.size());
  return report;
}

}  // namespace pinfer
