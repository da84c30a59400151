#include "tools/export/gguf_export.h"

#include <algorithm>
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
#include "tools/convert/tensor_source.h"
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
  kFusedQkv,    // falcon: attn_q, attn_k, attn_v as llama.cpp's attn_qkv (FusedQkvRows)
};

struct Job {
  TensorSpec spec;  // GGUF name, dtype, row-major shape
  Source source = Source::kStored;
  const TensorInfo* tensor = nullptr;  // kStored, kReencoded, kTransposed
  int64_t layer = -1;                  // kFc1, kFc2, kFusedQkv
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

absl::Status CheckExportable(const ModelConfig& c, ExportFormat format, const std::string& path) {
  const bool llama_cpp = format == ExportFormat::kLlamaCpp;
  if (c.architecture == "opt" && llama_cpp) {
    return absl::InvalidArgumentError(absl::StrCat(
        path,
        ": architecture 'opt': llama.cpp has no OPT architecture (pi-export writes llama "
        "and falcon models for it)"));
  }
  if (c.architecture != "llama" && c.architecture != "falcon" && c.architecture != "opt") {
    return absl::InvalidArgumentError(absl::StrCat(path, ": architecture '", c.architecture,
                                                   "': pi-export writes llama and falcon models"));
  }
  // PowerInfer's OPT and ReluFalcon predictors read the layer's residual before its LayerNorm
  // (llama.cpp's build_opt/build_falcon: ffn_inp, inpL); ours reads the normalized FFN input. For
  // rmsnorm the two differ by a per-token scale and a diagonal, folded into fc1 (the header);
  // LayerNorm also subtracts the mean and adds a bias, which no fc1 can hold.
  if (!llama_cpp && c.norm != NormKind::kRms) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": architecture '", c.architecture, "': PowerInfer's ", c.architecture,
        " predictor reads the residual before the LayerNorm and pinfer's the normalized input, "
        "so model.predictor.pi cannot be written as its fc1/fc2 (export --format llama.cpp)"));
  }
  if (c.norm_act.kind != ActivationKind::kNone) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": the model applies ", c.norm_act.ToString(), " after its norms, which ",
        llama_cpp ? "llama.cpp" : "PowerInfer", " cannot express"));
  }
  if (llama_cpp && c.architecture == "falcon" && c.ffn_act.kind != ActivationKind::kGeluErf) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": the FFN activation is ", c.ffn_act.ToString(),
        "; llama.cpp's falcon computes gelu (a ReluFalcon runs in PowerInfer, not llama.cpp)"));
  }
  if (llama_cpp && c.architecture == "llama" && c.ffn_act.kind != ActivationKind::kSilu) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": the FFN activation is ", c.ffn_act.ToString(),
        "; llama.cpp's llama computes silu (export a ReLU model with --format powerinfer)"));
  }
  if (!llama_cpp && c.ffn_act.kind != ActivationKind::kRelu) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": the FFN activation is ", c.ffn_act.ToString(),
                     "; PowerInfer's sparse llama computes plain relu"));
  }
  return absl::OkStatus();
}

// Falcon's attn_qkv row g as llama.cpp stores it (header of tools/convert/gguf_layouts.h): which
// of our tensors (0 q, 1 k, 2 v) and which of its rows. q and k go back to half-split RoPE pairs.
std::vector<std::pair<int, int64_t>> FusedQkvRows(const ModelConfig& c) {
  std::vector<std::pair<int, int64_t>> rows;
  for (int part = 0; part < 3; ++part) {
    const int64_t heads = part == 0 ? c.n_heads : c.n_kv_heads;
    std::vector<int64_t> ours(static_cast<size_t>(heads * c.head_dim));
    if (part == 2) {
      for (size_t r = 0; r < ours.size(); ++r) ours[r] = static_cast<int64_t>(r);
    } else {
      // HalfSplitToInterleavedRows: our row i is half-split row source[i]; invert it.
      const std::vector<int64_t> source = HalfSplitToInterleavedRows(heads, c.head_dim);
      for (size_t i = 0; i < source.size(); ++i) ours[static_cast<size_t>(source[i])] = i;
    }
    for (int64_t r : ours) rows.push_back({part, r});
  }
  return rows;
}

// Falcon-7B's one LayerNorm is stored as both attn_norm and ffn_norm: llama.cpp's layout then has
// no attn_norm_2.
bool SameNorms(const PiFile& file, int l) {
  for (auto [a, b] : {std::pair{tn::AttnNorm(l), tn::FfnNorm(l)},
                      std::pair{tn::AttnNormBias(l), tn::FfnNormBias(l)}}) {
    const TensorInfo* x = file.Find(a);
    const TensorInfo* y = file.Find(b);
    if (x == nullptr || y == nullptr || x->dtype != y->dtype || x->shape != y->shape) return false;
    const std::span<const uint8_t> p = file.Data(*x), q = file.Data(*y);
    if (!std::equal(p.begin(), p.end(), q.begin(), q.end())) return false;
  }
  return true;
}

// Writes falcon's attn_qkv of job.layer: our q, k and v rows in llama.cpp's order, as stored
// (AppendPiTensor, one row at a time) when all three are stored in the job's dtype, else decoded
// and encoded in it.
absl::Status WriteFusedQkv(GgufWriter& writer, const PiFile& file, const ModelConfig& c,
                           const Job& job) {
  const int l = static_cast<int>(job.layer);
  const TensorInfo* parts[3];
  for (int p = 0; p < 3; ++p) {
    absl::StatusOr<const TensorInfo*> t = file.Get(p == 0   ? tn::AttnQ(l)
                                                   : p == 1 ? tn::AttnK(l)
                                                            : tn::AttnV(l));
    if (!t.ok()) return t.status();
    parts[p] = *t;
  }
  const int64_t cols = c.dim;
  const std::vector<std::pair<int, int64_t>> rows = FusedQkvRows(c);
  bool copy = true;
  for (const TensorInfo* t : parts) {
    absl::StatusOr<DType> d = GgufDTypeFor(t->dtype);
    copy = copy && d.ok() && *d == job.spec.dtype;
  }
  if (copy) {
    for (const auto& [p, r] : rows) {
      absl::StatusOr<uint64_t> row_bytes = RowBytes(parts[p]->dtype, static_cast<uint64_t>(cols));
      if (!row_bytes.ok()) return row_bytes.status();
      const std::span<const uint8_t> row =
          file.Data(*parts[p]).subspan(static_cast<uint64_t>(r) * *row_bytes, *row_bytes);
      if (absl::Status s = AppendPiTensor(writer, job.spec.name, parts[p]->dtype, cols, row);
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }
  std::vector<float> values;
  values.reserve(rows.size() * static_cast<size_t>(cols));
  std::vector<float> decoded[3];
  for (int p = 0; p < 3; ++p) {
    absl::StatusOr<std::vector<float>> d = DecodeMatrix(
        file.Data(*parts[p]), parts[p]->dtype, static_cast<int64_t>(parts[p]->rows()), cols);
    if (!d.ok()) return d.status();
    decoded[p] = *std::move(d);
  }
  for (const auto& [p, r] : rows) {
    const float* row = decoded[p].data() + r * cols;
    values.insert(values.end(), row, row + cols);
  }
  absl::StatusOr<std::vector<uint8_t>> encoded =
      EncodeMatrix(values, static_cast<int64_t>(rows.size()), cols, job.spec.dtype);
  if (!encoded.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", job.spec.name, "': ", encoded.status().message()));
  }
  return writer.Append(job.spec.name, *encoded);
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
    const InputFile inputs[] = {{"the model", options.model_path}};
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
  if (absl::Status s = CheckExportable(c, options.format, options.model_path); !s.ok()) return s;
  if (powerinfer) {
    // Checked after the model, which may not be exportable with any predictor.
    const OutputFile outputs[] = {{"-o", options.output_path, std::nullopt}};
    const InputFile inputs[] = {{"the predictor", predictor_path}};
    if (absl::Status s = CheckOutputs(outputs, inputs); !s.ok()) return s;
  }

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
  const bool falcon = c.architecture == "falcon";
  // A Falcon layer in llama.cpp's names (tools/convert/gguf_layouts.h): attn_norm is the norm the
  // FFN reads, attn_norm_2 the 40B's separate attention norm, attn_qkv the fused projection,
  // ffn_up the gate-less FFN's one input projection.
  auto AddFalconLayer = [&](int l) -> absl::Status {
    const std::string blk = absl::StrCat("blk.", l, ".");
    std::vector<std::pair<std::string, std::string>> plain = {
        {tn::FfnNorm(l), blk + "attn_norm.weight"}, {tn::FfnNormBias(l), blk + "attn_norm.bias"}};
    if (!SameNorms(file, l)) {
      plain.push_back({tn::AttnNorm(l), blk + "attn_norm_2.weight"});
      plain.push_back({tn::AttnNormBias(l), blk + "attn_norm_2.bias"});
    }
    for (const auto& [ours, theirs] : plain) {
      if (absl::Status s = add_matrix_or_vector(ours, theirs); !s.ok()) return s;
    }
    // attn_qkv in q's dtype, or --dtype (WriteFusedQkv copies or re-encodes).
    absl::StatusOr<const TensorInfo*> q = file.Get(tn::AttnQ(l));
    if (!q.ok()) return q.status();
    absl::StatusOr<DType> stored = GgufDTypeFor((*q)->dtype);
    if (!stored.ok()) return stored.status();
    const DType wanted = options.dtype.value_or(*stored);
    Job qkv;
    qkv.spec = {blk + "attn_qkv.weight",
                MatrixDType(wanted, static_cast<uint64_t>(c.dim)),
                {static_cast<uint64_t>(c.q_dim() + 2 * c.kv_dim()), static_cast<uint64_t>(c.dim)}};
    if (qkv.spec.dtype != wanted) report.f16_fallback.push_back(qkv.spec.name);
    qkv.source = Source::kFusedQkv;
    qkv.layer = l;
    jobs.push_back(std::move(qkv));
    for (const auto& [ours, theirs] : {std::pair{tn::AttnOutput(l), blk + "attn_output.weight"},
                                       std::pair{tn::FfnGate(l), blk + "ffn_up.weight"}}) {
      if (absl::Status s = add_matrix_or_vector(ours, theirs); !s.ok()) return s;
    }
    return absl::OkStatus();
  };
  if (absl::Status s = add_matrix_or_vector(tn::kTokenEmbedding, weight(tn::kTokenEmbedding));
      !s.ok()) {
    return s;
  }
  if (absl::Status s = add_matrix_or_vector(tn::kOutputNorm, weight(tn::kOutputNorm)); !s.ok())
    return s;
  if (falcon) {
    if (absl::Status s = add_matrix_or_vector(tn::kOutputNormBias, "output_norm.bias"); !s.ok())
      return s;
  }
  if (!c.tied_embeddings) {
    if (absl::Status s = add_matrix_or_vector(tn::kOutput, weight(tn::kOutput)); !s.ok()) return s;
  } else if (powerinfer) {
    // PowerInfer's loader requires output.weight: the tied classifier is token_embd itself.
    if (absl::Status s = add_matrix_or_vector(tn::kTokenEmbedding, weight(tn::kOutput)); !s.ok())
      return s;
  }
  for (int l = 0; l < c.n_layers; ++l) {
    if (falcon) {
      if (absl::Status s = AddFalconLayer(l); !s.ok()) return s;
    }
    for (const char* suffix : kLayerSuffixes) {
      if (falcon) break;
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
    if (job.source == Source::kFusedQkv) {
      if (absl::Status s = WriteFusedQkv(**writer, file, c, job); !s.ok()) return s;
      continue;
    }
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
