#include "tools/convert/model_tensors.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/model/tensor_counts.h"
#include "runtime/model/tensor_names.h"

namespace pinfer {

std::string ShapeText(const std::vector<uint64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

std::vector<ExpectedTensor> ExpectedTensors(const ModelConfig& c) {
  namespace tn = tensor_names;
  const uint64_t dim = c.dim, ff = c.n_ff, vocab = c.vocab_size, q = c.q_dim(), kv = c.kv_dim();
  std::vector<ExpectedTensor> out;
  const bool layer_norm = c.norm == NormKind::kLayer;
  out.push_back({tn::kTokenEmbedding, {vocab, dim}});
  if (c.positions == PositionKind::kLearned) {
    out.push_back({tn::kPositionEmbedding, {static_cast<uint64_t>(c.position_rows()), dim}});
  }
  for (int l = 0; l < c.n_layers; ++l) {
    out.push_back({tn::AttnNorm(l), {dim}});
    if (layer_norm) out.push_back({tn::AttnNormBias(l), {dim}});
    out.push_back({tn::AttnQ(l), {q, dim}});
    out.push_back({tn::AttnK(l), {kv, dim}});
    out.push_back({tn::AttnV(l), {kv, dim}});
    out.push_back({tn::AttnOutput(l), {dim, q}});
    if (c.biases) {
      out.push_back({tn::AttnQBias(l), {q}});
      out.push_back({tn::AttnKBias(l), {kv}});
      out.push_back({tn::AttnVBias(l), {kv}});
      out.push_back({tn::AttnOutputBias(l), {dim}});
    }
    out.push_back({tn::FfnNorm(l), {dim}});
    if (layer_norm) out.push_back({tn::FfnNormBias(l), {dim}});
    out.push_back({tn::FfnGate(l), {ff, dim}});
    if (c.ffn_gated) out.push_back({tn::FfnUp(l), {ff, dim}});
    out.push_back({tn::FfnDownT(l), {ff, dim}});
    if (c.biases) {
      out.push_back({tn::FfnGateBias(l), {ff}});
      out.push_back({tn::FfnDownBias(l), {dim}});
    }
  }
  out.push_back({tn::kOutputNorm, {dim}});
  if (layer_norm) out.push_back({tn::kOutputNormBias, {dim}});
  if (!c.tied_embeddings) out.push_back({tn::kOutput, {vocab, dim}});
  return out;
}

absl::Status CheckCountsAgainstTensors(const ModelConfig& config,
                                       const std::map<std::string, SourceTensor>& tensors,
                                       const std::string& source) {
  TensorTableCounts counts;
  for (const auto& [name, tensor] : tensors) counts.Add(name, tensor.shape);
  if (absl::Status s = counts.Check(config); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(source, ": ", s.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SourceTensor>> AssembleTensors(
    const ModelConfig& config, std::map<std::string, SourceTensor> tensors,
    const std::string& source) {
  if (absl::Status s = CheckCountsAgainstTensors(config, tensors, source); !s.ok()) return s;
  std::vector<SourceTensor> out;
  for (const ExpectedTensor& e : ExpectedTensors(config)) {
    auto it = tensors.find(e.name);
    if (it == tensors.end()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": tensor '", e.name, "' is missing"));
    }
    if (it->second.shape != e.shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": inconsistent shape: tensor '", e.name, "' is ", ShapeText(it->second.shape),
          " but the hparams (dim ", config.dim, ", n_ff ", config.n_ff, ", heads ", config.n_heads,
          "/", config.n_kv_heads, ", vocab ", config.vocab_size, ") need ", ShapeText(e.shape)));
    }
    out.push_back(std::move(it->second));
    tensors.erase(it);
  }
  if (!tensors.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": unexpected tensor '",
                                                   tensors.begin()->first, "' for a model with ",
                                                   config.n_layers, " layers"));
  }
  return out;
}

}  // namespace pinfer
