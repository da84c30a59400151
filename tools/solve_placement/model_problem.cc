#include "tools/solve_placement/model_problem.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "format/strings.h"
#include "runtime/model/tensor_names.h"
#include "tools/solve_placement/memory_accounting.h"

namespace pinfer {
namespace {

// Per-layer bytes of a predictor file: tensors named "blk.N.*" count for layer N, the others are
// spread evenly over the layers.
absl::StatusOr<std::vector<uint64_t>> PredictorBytes(const std::string& path,
                                                     const std::string& model_digest,
                                                     int64_t n_layers) {
  absl::StatusOr<std::unique_ptr<PiFile>> file =
      PiFile::Open(path, {.expected_kind = ArtifactKind::kPredictor});
  if (!file.ok()) return file.status();
  absl::StatusOr<std::string> digest = (*file)->GetString(keys::kModelDigest);
  if (!digest.ok()) return digest.status();
  if (*digest != model_digest) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": was made for another model (model digest ", *digest,
                     ", this model is ", model_digest, ")"));
  }
  std::vector<uint64_t> bytes(static_cast<size_t>(n_layers), 0);
  uint64_t shared = 0;
  for (const TensorInfo& t : (*file)->tensors()) {
    std::vector<std::string> parts = absl::StrSplit(t.name, absl::MaxSplits('.', 2));
    int64_t layer = -1;
    if (parts.size() == 3 && parts[0] == "blk" && absl::SimpleAtoi(parts[1], &layer) &&
        layer >= 0 && layer < n_layers) {
      bytes[static_cast<size_t>(layer)] += t.size;
    } else {
      shared += t.size;
    }
  }
  for (int64_t l = 0; l < n_layers; ++l) {
    bytes[static_cast<size_t>(l)] +=
        shared / static_cast<uint64_t>(n_layers) +
        (static_cast<uint64_t>(l) < shared % static_cast<uint64_t>(n_layers) ? 1 : 0);
  }
  return bytes;
}

}  // namespace

absl::StatusOr<ModelProblem> BuildModelProblem(const PiFile& model,
                                               const ActivationProfile& profile,
                                               const ModelPlacementOptions& options) {
  ModelProblem out;
  absl::StatusOr<ModelConfig> config = ModelConfig::FromMetadata(model.metadata());
  if (!config.ok()) return model.Annotate(config.status());
  out.config = *config;
  const ModelConfig& c = out.config;
  out.model_digest = model.ContentDigestHex();
  if (profile.model_digest != out.model_digest) {
    return absl::FailedPreconditionError(
        absl::StrCat("the profile was made for another model (model digest ", profile.model_digest,
                     ", ", model.path(), " is ", out.model_digest, ")"));
  }
  if (profile.n_layers != c.n_layers || profile.n_ff != c.n_ff) {
    return absl::InvalidArgumentError(
        absl::StrCat("the profile has ", profile.n_layers, " layers x ", profile.n_ff,
                     " neurons but ", model.path(), " has ", c.n_layers, " x ", c.n_ff));
  }
  if (profile.tokens <= 0) {
    return absl::InvalidArgumentError("the profile observed no tokens");
  }
  out.profile_tokens = profile.tokens;
  out.context = options.context > 0 ? options.context : std::min<int64_t>(4096, c.context_length);
  if (out.context <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(model.path(), ": no context length: pass --ctx"));
  }
  if (options.batch <= 0) return absl::InvalidArgumentError("the batch must be positive");
  out.batch = options.batch;

  std::vector<uint64_t> predictor;
  if (!options.predictor_path.empty()) {
    absl::StatusOr<std::vector<uint64_t>> bytes =
        PredictorBytes(options.predictor_path, out.model_digest, c.n_layers);
    if (!bytes.ok()) return bytes.status();
    predictor = *std::move(bytes);
    out.predictor_source = options.predictor_path;
  } else {
    const int64_t rank =
        options.predictor_rank > 0 ? options.predictor_rank : DefaultPredictorRank(c);
    predictor.assign(static_cast<size_t>(c.n_layers), EstimatedPredictorBytesPerLayer(c, rank));
    out.predictor_source = absl::StrCat("estimated (rank ", rank, ", f16)");
  }

  PlacementProblem& p = out.problem;
  p.dim = c.dim;
  p.group_size = options.group_size;
  p.budget_bytes = options.budget_bytes;
  p.workspace_bytes = options.workspace_bytes ? *options.workspace_bytes
                                              : WorkspaceBytes(c, out.context, out.batch);
  p.objective = options.objective;
  p.hardware = options.hardware;
  for (const TensorInfo& t : model.tensors()) out.tensor_order.push_back(t.name);

  auto add_norm = [&](const std::string& name) {
    if (const TensorInfo* t = model.Find(name)) {
      p.norm_bytes += t->size;
      out.norm_tensors.push_back(name);
    }
  };
  const uint64_t kv = KvCacheBytesPerLayer(c, out.context);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const int layer = static_cast<int>(l);
    add_norm(tensor_names::AttnNorm(layer));
    add_norm(tensor_names::FfnNorm(layer));
    LayerProblem lp;
    std::vector<std::string> attention = {tensor_names::AttnQ(layer), tensor_names::AttnK(layer),
                                          tensor_names::AttnV(layer),
                                          tensor_names::AttnOutput(layer)};
    for (const std::string& name : attention) {
      absl::StatusOr<const TensorInfo*> t = model.Get(name);
      if (!t.ok()) return t.status();
      lp.attention_bytes += (*t)->size;
    }
    out.attention_tensors.push_back(attention);
    for (const std::string& name : {tensor_names::FfnGate(layer), tensor_names::FfnUp(layer),
                                    tensor_names::FfnDownT(layer)}) {
      // A gate-less FFN (OPT: fc1 is the gate) has no up rows.
      if (!c.ffn_gated && name == tensor_names::FfnUp(layer)) continue;
      absl::StatusOr<const TensorInfo*> t = model.Get(name);
      if (!t.ok()) return t.status();
      if ((*t)->shape.size() != 2 || static_cast<int64_t>((*t)->rows()) != c.n_ff) {
        return absl::InvalidArgumentError(absl::StrCat(model.path(), ": tensor '", name, "' ",
                                                       (*t)->ShapeString(), " does not have ",
                                                       c.n_ff, " neuron rows"));
      }
      lp.neuron_bytes += (*t)->size / static_cast<uint64_t>(c.n_ff);
      out.weight_dtype = std::string(DTypeName((*t)->dtype));
    }
    lp.kv_bytes = kv;
    lp.kv_read_bytes = kv / 2;
    lp.predictor_bytes = predictor[static_cast<size_t>(l)];
    lp.frequency.resize(static_cast<size_t>(c.n_ff));
    for (int64_t i = 0; i < c.n_ff; ++i) {
      lp.frequency[static_cast<size_t>(i)] = static_cast<float>(profile.Frequency(l, i));
    }
    p.layers.push_back(std::move(lp));
  }
  add_norm(tensor_names::kOutputNorm);
  const TensorInfo* output = model.Find(tensor_names::kOutput);
  if (output == nullptr) output = model.Find(tensor_names::kTokenEmbedding);
  if (output == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(model.path(), ": has neither 'output' nor 'token_embd'"));
  }
  out.output_tensor = output->name;
  p.output_bytes = output->size;
  if (absl::Status s = p.Validate(); !s.ok()) return s;
  return out;
}

PlacementPlan MakePlan(const ModelProblem& model, const PlacementResult& result) {
  const PlacementProblem& p = model.problem;
  const size_t L = p.layers.size();
  PlacementPlan plan;
  plan.model_digest = model.model_digest;
  plan.n_layers = static_cast<int64_t>(L);
  plan.n_ff = model.config.n_ff;
  plan.budget_bytes = p.budget_bytes;
  plan.context = model.context;
  plan.batch = model.batch;
  plan.group_size = p.group_size;
  plan.objective = std::string(ObjectiveName(p.objective));
  plan.hardware = p.hardware.name;
  plan.solver = result.solver;
  plan.bytes = result.figures.bytes;
  plan.expected_coverage = result.figures.coverage;
  plan.expected_latency_ms = result.figures.latency_s * 1e3;
  plan.expected_gpu_ms = result.figures.gpu_s * 1e3;
  plan.expected_cpu_ms = result.figures.cpu_s * 1e3;
  plan.expected_sync_ms = result.figures.sync_s * 1e3;
  plan.attention_on_gpu = result.placement.attention_on_gpu;
  plan.ffn_gpu_neurons = result.placement.gpu_neurons;
  absl::flat_hash_set<std::string> on_gpu(model.norm_tensors.begin(), model.norm_tensors.end());
  for (size_t l = 0; l < L; ++l) {
    const bool has_neurons = !result.placement.gpu_neurons[l].empty();
    plan.predictor_on_gpu.push_back(has_neurons ? 1 : 0);
    plan.min_share_neurons.push_back(
        static_cast<int32_t>(result.groups[l].NeuronsInFirst(result.groups[l].min_share_groups)));
    plan.ffn_gpu_coverage.push_back(static_cast<float>(result.figures.layer_coverage[l]));
    if (result.placement.attention_on_gpu[l]) {
      on_gpu.insert(model.attention_tensors[l].begin(), model.attention_tensors[l].end());
    }
  }
  if (result.placement.output_on_gpu) on_gpu.insert(model.output_tensor);
  for (const std::string& name : model.tensor_order) {
    if (on_gpu.contains(name)) plan.gpu_tensors.push_back(name);
  }
  return plan;
}

}  // namespace pinfer
