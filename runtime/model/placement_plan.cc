#include "runtime/model/placement_plan.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "format/pi_file.h"
#include "format/pi_writer.h"
#include "format/strings.h"
#include "runtime/model/artifact_file.h"
#include "runtime/model/model.h"
#include "runtime/model/model_config.h"
#include "runtime/model/tensor_names.h"

namespace pinfer {
namespace {

constexpr char kBudget[] = "plan.budget_bytes";
constexpr char kLayers[] = "plan.n_layers";
constexpr char kNff[] = "plan.n_ff";
constexpr char kContext[] = "plan.context";
constexpr char kBatch[] = "plan.batch";
constexpr char kGroup[] = "plan.group_size";
constexpr char kObjective[] = "plan.objective";
constexpr char kHardware[] = "plan.hardware";
constexpr char kKvDtype[] = "plan.kv_dtype";
constexpr char kSolver[] = "plan.solver";
constexpr char kGpuTensors[] = "plan.gpu_tensors";
constexpr char kCoverage[] = "plan.expected.coverage";
constexpr char kLatency[] = "plan.expected.latency_ms";
constexpr char kGpuMs[] = "plan.expected.gpu_ms";
constexpr char kCpuMs[] = "plan.expected.cpu_ms";
constexpr char kSyncMs[] = "plan.expected.sync_ms";
constexpr char kAttention[] = "layer.attention_on_gpu";
constexpr char kPredictor[] = "layer.predictor_on_gpu";
constexpr char kMinShare[] = "layer.min_share_neurons";
constexpr char kLayerCoverage[] = "layer.ffn_gpu_coverage";

struct BytesKey {
  const char* key;
  uint64_t PlanBytes::*field;
};
constexpr BytesKey kBytesKeys[] = {
    {"plan.bytes.workspace", &PlanBytes::workspace},
    {"plan.bytes.norms", &PlanBytes::norms},
    {"plan.bytes.attention", &PlanBytes::attention},
    {"plan.bytes.kv", &PlanBytes::kv},
    {"plan.bytes.ffn", &PlanBytes::ffn},
    {"plan.bytes.predictor", &PlanBytes::predictor},
    {"plan.bytes.output", &PlanBytes::output},
};
constexpr char kBytesTotal[] = "plan.bytes.total";

template <typename T>
absl::Status CopyVector(const PiFile& file, const char* name, DType dtype, uint64_t count,
                        std::vector<T>& out) {
  absl::StatusOr<const TensorInfo*> t = file.Get(name);
  if (!t.ok()) return t.status();
  if ((*t)->dtype != dtype || (*t)->shape.size() != 1 || (*t)->shape[0] != count) {
    return absl::DataLossError(absl::StrCat(file.path(), ": tensor '", name, "' must be ",
                                            Sv(DTypeName(dtype)), " [", count, "], not ",
                                            Sv(DTypeName((*t)->dtype)), " ", (*t)->ShapeString()));
  }
  out.resize(count);
  if (count > 0) std::memcpy(out.data(), file.Data(**t).data(), count * sizeof(T));
  return absl::OkStatus();
}

}  // namespace

std::string PlacementPlan::NeuronTensorName(int64_t layer) {
  return tensor_names::Layer(static_cast<int>(layer), "ffn_gpu_neurons");
}

bool PlacementPlan::TensorOnGpu(const std::string& name) const {
  return std::find(gpu_tensors.begin(), gpu_tensors.end(), name) != gpu_tensors.end();
}

bool PlacementPlan::AnythingOnGpu(bool tied_embeddings) const {
  for (uint8_t on : attention_on_gpu) {
    if (on != 0) return true;
  }
  return GpuNeuronCount() > 0 || ClassifierOnGpu(tied_embeddings);
}

int64_t PlacementPlan::GpuNeuronCount() const {
  int64_t n = 0;
  for (const std::vector<int32_t>& layer : ffn_gpu_neurons) n += static_cast<int64_t>(layer.size());
  return n;
}

absl::Status PlacementPlan::Validate() const {
  if (n_layers <= 0 || n_ff <= 0)
    return absl::InvalidArgumentError("plan has no layers or neurons");
  const size_t L = static_cast<size_t>(n_layers);
  if (attention_on_gpu.size() != L || predictor_on_gpu.size() != L ||
      min_share_neurons.size() != L || ffn_gpu_coverage.size() != L ||
      ffn_gpu_neurons.size() != L) {
    return absl::InvalidArgumentError(
        absl::StrCat("plan per-layer arrays do not match n_layers = ", n_layers));
  }
  if (objective != "coverage" && objective != "latency") {
    return absl::InvalidArgumentError(
        absl::StrCat("plan objective '", objective, "' is not coverage or latency"));
  }
  if (group_size <= 0 || context < 0 || batch < 0) {
    return absl::InvalidArgumentError("plan group size, context or batch is out of range");
  }
  // Each part first: their sum in uint64 could wrap past the budget.
  for (uint64_t part : {bytes.workspace, bytes.norms, bytes.attention, bytes.kv, bytes.ffn,
                        bytes.predictor, bytes.output}) {
    if (part > budget_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "plan has a part of ", part, " GPU bytes, more than its budget of ", budget_bytes));
    }
  }
  if (bytes.total() > budget_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "plan uses ", bytes.total(), " GPU bytes, more than its budget of ", budget_bytes));
  }
  for (size_t l = 0; l < L; ++l) {
    const std::vector<int32_t>& neurons = ffn_gpu_neurons[l];
    if (static_cast<int64_t>(neurons.size()) > n_ff) {
      return absl::InvalidArgumentError(absl::StrCat("layer ", l, " lists more neurons than n_ff"));
    }
    for (size_t i = 0; i < neurons.size(); ++i) {
      if (neurons[i] < 0 || neurons[i] >= n_ff || (i > 0 && neurons[i] <= neurons[i - 1])) {
        return absl::InvalidArgumentError(absl::StrCat(
            "layer ", l, " GPU neuron list is not sorted, unique and inside [0, ", n_ff, ")"));
      }
    }
    if (!neurons.empty() && static_cast<int64_t>(neurons.size()) < min_share_neurons[l]) {
      return absl::InvalidArgumentError(absl::StrCat("layer ", l, " has ", neurons.size(),
                                                     " GPU neurons, below its minimum share of ",
                                                     min_share_neurons[l]));
    }
    if ((predictor_on_gpu[l] != 0) != !neurons.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "layer ", l, " predictor must be on the GPU exactly when the layer has GPU neurons"));
    }
    if (attention_on_gpu[l] > 1 || predictor_on_gpu[l] > 1) {
      return absl::InvalidArgumentError(absl::StrCat("layer ", l, " has a flag other than 0/1"));
    }
    if (!(ffn_gpu_coverage[l] >= 0.0f && ffn_gpu_coverage[l] <= 1.0f + 1e-6f)) {
      return absl::InvalidArgumentError(absl::StrCat("layer ", l, " coverage is outside [0, 1]"));
    }
  }
  return absl::OkStatus();
}

absl::Status PlacementPlan::Write(const std::string& path, const Metadata& extra) const {
  if (absl::Status s = Validate(); !s.ok()) return s;
  Metadata m = extra;
  m.SetString(keys::kModelDigest, model_digest);
  m.SetInt(kLayers, n_layers);
  m.SetInt(kNff, n_ff);
  m.SetInt(kBudget, static_cast<int64_t>(budget_bytes));
  m.SetInt(kContext, context);
  m.SetInt(kBatch, batch);
  m.SetInt(kGroup, group_size);
  m.SetString(kObjective, objective);
  m.SetString(kHardware, hardware);
  m.SetString(kKvDtype, kv_dtype);
  m.SetString(kSolver, solver);
  m.SetStringArray(kGpuTensors, gpu_tensors);
  for (const BytesKey& k : kBytesKeys) m.SetInt(k.key, static_cast<int64_t>(bytes.*k.field));
  m.SetInt(kBytesTotal, static_cast<int64_t>(bytes.total()));
  m.SetFloat(kCoverage, expected_coverage);
  m.SetFloat(kLatency, expected_latency_ms);
  m.SetFloat(kGpuMs, expected_gpu_ms);
  m.SetFloat(kCpuMs, expected_cpu_ms);
  m.SetFloat(kSyncMs, expected_sync_ms);

  const uint64_t L = static_cast<uint64_t>(n_layers);
  std::vector<TensorData> tensors = {
      MakeTensor(kAttention, {L}, std::span<const uint8_t>(attention_on_gpu)),
      MakeTensor(kPredictor, {L}, std::span<const uint8_t>(predictor_on_gpu)),
      MakeTensor(kMinShare, {L}, std::span<const int32_t>(min_share_neurons)),
      MakeTensor(kLayerCoverage, {L}, std::span<const float>(ffn_gpu_coverage)),
  };
  for (int64_t l = 0; l < n_layers; ++l) {
    const std::vector<int32_t>& neurons = ffn_gpu_neurons[static_cast<size_t>(l)];
    tensors.push_back(
        MakeTensor(NeuronTensorName(l), {neurons.size()}, std::span<const int32_t>(neurons)));
  }
  return WritePiFile(path, ArtifactKind::kPlan, std::move(m), tensors);
}

absl::StatusOr<PlacementPlan> PlacementPlan::Read(
    const std::string& path, std::optional<std::string> expected_model_digest) {
  absl::StatusOr<OpenedArtifact> opened =
      OpenArtifact(path, ArtifactKind::kPlan, expected_model_digest, "was made for");
  if (!opened.ok()) return opened.status();
  const PiFile& file = *opened->file;
  PlacementPlan p;
  p.model_digest = opened->model_digest;
  auto get_int = [&](const char* key, int64_t& out) -> absl::Status {
    absl::StatusOr<int64_t> v = file.GetInt(key);
    if (!v.ok()) return v.status();
    out = *v;
    return absl::OkStatus();
  };
  auto get_string = [&](const char* key, std::string& out) -> absl::Status {
    absl::StatusOr<std::string> v = file.GetString(key);
    if (!v.ok()) return v.status();
    out = *v;
    return absl::OkStatus();
  };
  auto get_float = [&](const char* key, double& out) -> absl::Status {
    absl::StatusOr<double> v = file.GetFloat(key);
    if (!v.ok()) return v.status();
    out = *v;
    return absl::OkStatus();
  };
  int64_t budget = 0;
  for (absl::Status s :
       {get_int(kLayers, p.n_layers), get_int(kNff, p.n_ff), get_int(kBudget, budget),
        get_int(kContext, p.context), get_int(kBatch, p.batch), get_int(kGroup, p.group_size),
        get_string(kObjective, p.objective), get_string(kHardware, p.hardware),
        get_string(kKvDtype, p.kv_dtype), get_string(kSolver, p.solver),
        get_float(kCoverage, p.expected_coverage), get_float(kLatency, p.expected_latency_ms),
        get_float(kGpuMs, p.expected_gpu_ms), get_float(kCpuMs, p.expected_cpu_ms),
        get_float(kSyncMs, p.expected_sync_ms)}) {
    if (!s.ok()) return s;
  }
  if (budget < 0 || p.n_layers <= 0 || p.n_layers > (1 << 20) || p.n_ff <= 0 ||
      p.n_ff > (int64_t{1} << 31)) {
    return absl::DataLossError(absl::StrCat(path, ": plan budget or shape is out of range"));
  }
  p.budget_bytes = static_cast<uint64_t>(budget);
  absl::StatusOr<std::vector<std::string>> gpu_tensors =
      file.metadata().GetStringArray(kGpuTensors);
  if (!gpu_tensors.ok()) return file.Annotate(gpu_tensors.status());
  p.gpu_tensors = *std::move(gpu_tensors);
  for (const BytesKey& k : kBytesKeys) {
    int64_t v = 0;
    if (absl::Status s = get_int(k.key, v); !s.ok()) return s;
    if (v < 0) return absl::DataLossError(absl::StrCat(path, ": ", k.key, " is negative"));
    p.bytes.*k.field = static_cast<uint64_t>(v);
  }

  const uint64_t L = static_cast<uint64_t>(p.n_layers);
  for (absl::Status s : {CopyVector(file, kAttention, DType::kU8, L, p.attention_on_gpu),
                         CopyVector(file, kPredictor, DType::kU8, L, p.predictor_on_gpu),
                         CopyVector(file, kMinShare, DType::kI32, L, p.min_share_neurons),
                         CopyVector(file, kLayerCoverage, DType::kF32, L, p.ffn_gpu_coverage)}) {
    if (!s.ok()) return s;
  }
  p.ffn_gpu_neurons.resize(L);
  for (int64_t l = 0; l < p.n_layers; ++l) {
    const std::string name = NeuronTensorName(l);
    absl::StatusOr<const TensorInfo*> t = file.Get(name);
    if (!t.ok()) return t.status();
    if ((*t)->dtype != DType::kI32 || (*t)->shape.size() != 1) {
      return absl::DataLossError(absl::StrCat(path, ": tensor '", name, "' must be i32 [count]"));
    }
    std::vector<int32_t>& neurons = p.ffn_gpu_neurons[static_cast<size_t>(l)];
    neurons.resize((*t)->shape[0]);
    if (!neurons.empty()) {
      std::memcpy(neurons.data(), file.Data(**t).data(), neurons.size() * sizeof(int32_t));
    }
  }
  if (absl::Status s = p.Validate(); !s.ok()) return file.Annotate(s);
  return p;
}

absl::StatusOr<PlacementPlan> PlacementPlan::ReadFor(const std::string& path, const Model& model) {
  absl::StatusOr<PlacementPlan> plan = Read(path);
  if (!plan.ok()) return plan.status();
  const ModelConfig& c = model.config();
  const std::string digest = model.file().ContentDigestHex();
  if (plan->model_digest != digest) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": was made for another model (model digest ", plan->model_digest, ", ",
                     model.path(), " is ", digest, ")"));
  }
  if (plan->n_layers != c.n_layers || plan->n_ff != c.n_ff) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": the plan is for ", plan->n_layers, " layers x ", plan->n_ff,
                     " neurons, ", model.path(), " has ", c.n_layers, " x ", c.n_ff));
  }
  return plan;
}

}  // namespace pinfer
