#include "runtime/model/model.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "format/strings.h"
#include "runtime/model/tensor_counts.h"
#include "runtime/model/tensor_names.h"

namespace pinfer {
namespace {

bool IsWeightDType(DType dtype) {
  switch (dtype) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kQ8_0:
    case DType::kQ4_0:
    case DType::kQ4_0x16:
      return true;
    default:
      return false;
  }
}

uint64_t Bytes(const cpu::MatrixView& m) { return m.row_bytes * static_cast<uint64_t>(m.rows); }

}  // namespace

uint64_t LayerWeights::AttentionBytes() const {
  return Bytes(attn_q) + Bytes(attn_k) + Bytes(attn_v) + Bytes(attn_output);
}

uint64_t LayerWeights::FfnBytes() const {
  return Bytes(ffn_gate) + Bytes(ffn_up) + Bytes(ffn_down_t);
}

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const std::string& path,
                                                   const ModelLoadOptions& options) {
  PiOpenOptions open_options;
  open_options.expected_kind = ArtifactKind::kModel;
  open_options.populate = options.populate;
  absl::StatusOr<std::unique_ptr<PiFile>> file = PiFile::Open(path, open_options);
  if (!file.ok()) return file.status();
  auto model = std::unique_ptr<Model>(new Model());
  model->file_ = *std::move(file);
  const PiFile& pi = *model->file_;

  absl::StatusOr<ModelConfig> config = ModelConfig::FromMetadata(pi.metadata());
  if (!config.ok()) return pi.Annotate(config.status());
  model->config_ = *std::move(config);
  // Before anything is sized by the header's counts (per layer, per token).
  TensorTableCounts counts;
  for (const TensorInfo& t : pi.tensors()) counts.Add(t.name, t.shape);
  if (absl::Status s = counts.Check(model->config_); !s.ok()) return pi.Annotate(s);

  absl::StatusOr<Vocabulary> vocabulary = Vocabulary::FromMetadata(pi.metadata());
  if (vocabulary.ok()) {
    if (static_cast<int64_t>(vocabulary->size()) != model->config_.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": the tokenizer has ", vocabulary->size(),
                       " tokens but the model's vocab_size is ", model->config_.vocab_size));
    }
    model->vocabulary_ = *std::move(vocabulary);
  } else if (options.require_vocabulary || !absl::IsNotFound(vocabulary.status())) {
    return pi.Annotate(vocabulary.status());
  }

  if (absl::Status s = model->Bind(); !s.ok()) return s;
  return model;
}

absl::Status Model::Bind() {
  const PiFile& pi = *file_;
  const ModelConfig& c = config_;
  const uint64_t dim = c.dim, q_dim = c.q_dim(), kv_dim = c.kv_dim(), n_ff = c.n_ff,
                 vocab = c.vocab_size;
  // The first error wins; later binds are skipped.
  absl::Status status;
  auto bind_matrix = [&](const std::string& name, uint64_t rows, uint64_t cols,
                         cpu::MatrixView& out) {
    if (!status.ok()) return;
    const uint64_t shape[] = {rows, cols};
    absl::StatusOr<const TensorInfo*> t = pi.GetChecked(name, shape);
    if (!t.ok()) {
      status = t.status();
      return;
    }
    const TensorInfo& info = **t;
    if (!IsWeightDType(info.dtype)) {
      status = absl::InvalidArgumentError(
          absl::StrCat(pi.path(), ": tensor '", name, "' has dtype ", Sv(DTypeName(info.dtype)),
                       ", expected f32, f16, bf16, q8_0, q4_0 or q4_0x16"));
      return;
    }
    out.dtype = info.dtype;
    out.rows = static_cast<int64_t>(rows);
    out.cols = static_cast<int64_t>(cols);
    out.data = pi.DataAs<uint8_t>(info);
    out.row_bytes = info.size / rows;  // the reader checked size == RowBytes(cols) * rows
    weight_bytes_ += info.size;
  };
  // A 1-D f32 tensor of `count` entries (norms and biases).
  auto bind_vector = [&](const std::string& name, uint64_t count, const float*& out) {
    if (!status.ok()) return;
    const uint64_t shape[] = {count};
    absl::StatusOr<const TensorInfo*> t = pi.GetChecked(name, shape);
    if (!t.ok()) {
      status = t.status();
      return;
    }
    if ((*t)->dtype != DType::kF32) {
      status = absl::InvalidArgumentError(absl::StrCat(pi.path(), ": vector tensor '", name,
                                                       "' has dtype ", Sv(DTypeName((*t)->dtype)),
                                                       ", expected f32"));
      return;
    }
    out = pi.DataAs<float>(**t);
    weight_bytes_ += (*t)->size;
  };

  auto bind_norm = [&](const std::string& name, const float*& out) { bind_vector(name, dim, out); };
  const bool layer_norm = c.norm == NormKind::kLayer;
  // The bias of a LayerNorm beside its weight.
  auto bind_norm_bias = [&](const std::string& name, const float*& out) {
    if (layer_norm) bind_norm(name, out);
  };
  auto bind_bias = [&](const std::string& name, uint64_t count, const float*& out) {
    if (c.biases) bind_vector(name, count, out);
  };

  namespace tn = tensor_names;
  bind_matrix(tn::kTokenEmbedding, vocab, dim, token_embedding_);
  if (c.positions == PositionKind::kLearned) {
    bind_matrix(tn::kPositionEmbedding, static_cast<uint64_t>(c.position_rows()), dim,
                position_embedding_);
  }
  bind_norm(tn::kOutputNorm, output_norm_);
  bind_norm_bias(tn::kOutputNormBias, output_norm_b_);
  if (c.tied_embeddings) {
    if (status.ok() && pi.Find(tn::kOutput) != nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          pi.path(), ": the embeddings are tied but the file also has an 'output' tensor"));
    }
    output_ = token_embedding_;
  } else {
    bind_matrix(tn::kOutput, vocab, dim, output_);
  }
  layers_.resize(static_cast<size_t>(c.n_layers));
  for (int l = 0; l < c.n_layers; ++l) {
    LayerWeights& w = layers_[static_cast<size_t>(l)];
    bind_norm(tn::AttnNorm(l), w.attn_norm);
    bind_norm_bias(tn::AttnNormBias(l), w.attn_norm_b);
    bind_matrix(tn::AttnQ(l), q_dim, dim, w.attn_q);
    bind_matrix(tn::AttnK(l), kv_dim, dim, w.attn_k);
    bind_matrix(tn::AttnV(l), kv_dim, dim, w.attn_v);
    bind_matrix(tn::AttnOutput(l), dim, q_dim, w.attn_output);
    bind_bias(tn::AttnQBias(l), q_dim, w.attn_q_b);
    bind_bias(tn::AttnKBias(l), kv_dim, w.attn_k_b);
    bind_bias(tn::AttnVBias(l), kv_dim, w.attn_v_b);
    bind_bias(tn::AttnOutputBias(l), dim, w.attn_output_b);
    bind_norm(tn::FfnNorm(l), w.ffn_norm);
    bind_norm_bias(tn::FfnNormBias(l), w.ffn_norm_b);
    bind_matrix(tn::FfnGate(l), n_ff, dim, w.ffn_gate);
    if (c.ffn_gated) bind_matrix(tn::FfnUp(l), n_ff, dim, w.ffn_up);
    bind_matrix(tn::FfnDownT(l), n_ff, dim, w.ffn_down_t);
    bind_bias(tn::FfnGateBias(l), n_ff, w.ffn_gate_b);
    bind_bias(tn::FfnDownBias(l), dim, w.ffn_down_b);
  }
  return status;
}

std::string Model::WeightDTypeSummary() const {
  std::set<std::string> names;
  auto add = [&](const cpu::MatrixView& m) { names.insert(std::string(DTypeName(m.dtype))); };
  add(token_embedding_);
  add(output_);
  for (const LayerWeights& w : layers_) {
    for (const cpu::MatrixView* m :
         {&w.attn_q, &w.attn_k, &w.attn_v, &w.attn_output, &w.ffn_gate, &w.ffn_up, &w.ffn_down_t}) {
      if (m->rows > 0) add(*m);  // (a gate-less FFN has no up)
    }
  }
  if (names.size() == 1) return *names.begin();
  return absl::StrCat("mixed (", absl::StrJoin(names, ", "), ")");
}

}  // namespace pinfer
