// model.plan.pi: where every part of a model lives for one VRAM budget. pi-place writes it (the
// solver in tools/solve_placement); the hybrid executor reads it and allocates exactly this on the
// GPU. The budget covers pinfer's own allocations, not the CUDA context (leave ~0.5 GB for it).
//
// Placement units, and the executor's contract:
//   - Norms (every 1-D f32 tensor) and a workspace are always on the GPU: the minimum working set.
//   - Attention of layer N (blk.N.attn_q/k/v/output) is on the GPU or on the CPU as a whole, and
//     its KV cache for `context` positions lives with it (f16 on the GPU, as accounted here).
//   - FFN of layer N: the neurons listed in blk.N.ffn_gpu_neurons have their gate, up and down_t
//     rows gathered into GPU buffers (in the listed order); every other neuron is computed on the
//     CPU when the predictor says it fires. The lists are made of whole groups of `group_size`
//     neurons taken in decreasing firing frequency, so they are the layer's hottest neurons.
//   - The predictor of layer N runs on the GPU iff the layer has GPU neurons (it is then needed
//     there to skip predicted-inactive hot rows); otherwise it runs on the CPU.
//   - The classifier (`output`, or `token_embd` when tied) is on the GPU iff it is listed in
//     plan.gpu_tensors. The embedding lookup of an untied model stays on the CPU (one row/token).
//   - A layer with some GPU work and some CPU work costs one synchronisation per token (the
//     hidden state goes to the other device and a partial sum comes back); the minimum GPU share
//     per layer (plan.min_share_neurons) is where the GPU part saves more than that costs.
//
// Artifact kind: plan. Metadata:
//   model.digest               string    content digest of the model it was made for
//   plan.n_layers, plan.n_ff   int       shape of the model (checked against the model)
//   plan.budget_bytes          int       the VRAM budget (--vram)
//   plan.context               int       KV positions reserved per GPU layer (--ctx)
//   plan.batch                 int       tokens per forward pass the workspace is sized for
//   plan.group_size            int       neurons per placement group (--group)
//   plan.objective             string    coverage | latency
//   plan.hardware              string    name of the hardware model of the cost estimates
//   plan.kv_dtype              string    "f16": dtype of the KV cache on the GPU, as accounted
//   plan.solver                string    how it was solved ("cbc optimal", "all fits", ...)
//   plan.gpu_tensors           string[]  model tensors held entirely on the GPU (norms, attention
//                                        of GPU layers, the classifier), in model order
//   plan.bytes.<part>          int       GPU bytes per part: workspace, norms, attention, kv, ffn,
//                                        predictor, output, total (total <= budget_bytes)
//   plan.expected.coverage     float     fraction of FFN activations (profile-weighted) on the GPU
//   plan.expected.latency_ms   float     estimated decode time per token (cost model)
//   plan.expected.gpu_ms, plan.expected.cpu_ms, plan.expected.sync_ms
//                              float     parts of latency_ms (GPU-only, CPU-only, synchronisation)
// Tensors:
//   layer.attention_on_gpu     u8  [n_layers]   1: attention weights + KV cache on the GPU
//   layer.predictor_on_gpu     u8  [n_layers]   1: the layer's predictor on the GPU
//   layer.min_share_neurons    i32 [n_layers]   smallest non-zero GPU neuron count allowed
//   layer.ffn_gpu_coverage     f32 [n_layers]   per layer, the expected share of activations on GPU
//   blk.N.ffn_gpu_neurons      i32 [count]      sorted ascending, unique, < n_ff (count may be 0)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "format/metadata.h"

namespace pinfer {

class Model;

// GPU bytes per part of the working set.
struct PlanBytes {
  uint64_t workspace = 0;
  uint64_t norms = 0;
  uint64_t attention = 0;
  uint64_t kv = 0;
  uint64_t ffn = 0;
  uint64_t predictor = 0;
  uint64_t output = 0;

  uint64_t total() const { return workspace + norms + attention + kv + ffn + predictor + output; }
  bool operator==(const PlanBytes&) const = default;
};

struct PlacementPlan {
  std::string model_digest;
  int64_t n_layers = 0;
  int64_t n_ff = 0;
  uint64_t budget_bytes = 0;
  int64_t context = 0;
  int64_t batch = 0;
  int64_t group_size = 0;
  std::string objective;  // "coverage" | "latency"
  std::string hardware;
  std::string kv_dtype = "f16";
  std::string solver;
  std::vector<std::string> gpu_tensors;
  PlanBytes bytes;
  double expected_coverage = 0;
  double expected_latency_ms = 0;
  double expected_gpu_ms = 0;
  double expected_cpu_ms = 0;
  double expected_sync_ms = 0;
  std::vector<uint8_t> attention_on_gpu;              // [n_layers]
  std::vector<uint8_t> predictor_on_gpu;              // [n_layers]
  std::vector<int32_t> min_share_neurons;             // [n_layers]
  std::vector<float> ffn_gpu_coverage;                // [n_layers]
  std::vector<std::vector<int32_t>> ffn_gpu_neurons;  // [n_layers][count]

  static std::string NeuronTensorName(int64_t layer);
  bool TensorOnGpu(const std::string& name) const;
  // Whether the classifier is on the GPU: `output`, or `token_embd` for tied embeddings.
  bool ClassifierOnGpu(bool tied_embeddings) const {
    return TensorOnGpu(tied_embeddings ? "token_embd" : "output");
  }
  // Whether anything (FFN neurons, a layer's attention, the classifier) is on the GPU.
  bool AnythingOnGpu(bool tied_embeddings) const;
  int64_t GpuNeuronCount() const;

  // Shapes, sortedness and ranges, the byte total against the budget, the minimum shares and the
  // predictor rule; the message names the first problem.
  absl::Status Validate() const;
  // Writes atomically; `extra` adds provenance or report keys.
  absl::Status Write(const std::string& path, const Metadata& extra = Metadata()) const;
  // Reads and validates; when `expected_model_digest` is given, a plan made for another model is
  // rejected with an error naming both digests.
  static absl::StatusOr<PlacementPlan> Read(
      const std::string& path, std::optional<std::string> expected_model_digest = std::nullopt);
  // Read() for `model`: also rejects a plan of another model (digest), layer count or FFN width.
  // The one place a plan is checked against the model.
  static absl::StatusOr<PlacementPlan> ReadFor(const std::string& path, const Model& model);
};

}  // namespace pinfer
