// The device side of one part of a layer's FFN: "compute these neurons of this layer" on one
// backend. A part (layer_ffn.h) is a fixed subset of the layer's neurons (all of them for dense
// and sparse CPU execution; the plan's hot neurons on the GPU and the rest on the CPU for a hybrid
// layer); LayerFfn decides, per call, which of them to compute and hands the backend NeuronRows
// over the model's neuron ids.
//
// A backend works in two steps so that two backends overlap without extra threads: Begin starts
// the work (the CPU backend does all of it on the calling thread's OpenMP kernels; the CUDA one
// only enqueues it on its stream) and Finish completes it, adding the partial sum to the residual
// stream. LayerFfn begins every part, then finishes them: the CPU computes while the GPU does, and
// the layer waits once, for the GPU.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/exec/ffn_rows.h"
#include "runtime/exec/ffn_stats.h"
#include "runtime/model/model.h"

namespace pinfer {

struct PartCall {
  int64_t layer = 0;
  int64_t n = 0;                 // tokens
  const float* input = nullptr;  // [n, dim] host memory, or the device's when on_device
  float* output = nullptr;       // [n, dim] the residual stream: the partial sum is added here
  // The layer's hidden state is on the device (its attention runs there): input and output are
  // the device backend's memory, and a device part neither uploads nor downloads them. Only an
  // asynchronous (device) part is called so.
  bool on_device = false;
  // The neurons to compute. kAll: every neuron of the PART (not of the layer).
  NeuronRows rows;
  FfnWorkspace* workspace = nullptr;  // the session's scratch, for backends computing on the CPU
};

class PartBackend {
 public:
  virtual ~PartBackend() = default;
  virtual std::string_view device() const = 0;  // "cpu", "cuda"
  // Whether Begin only enqueues work (a device with its own stream): such parts begin first.
  virtual bool asynchronous() const = 0;
  // Whether the backend selects the part's active neurons itself (a predictor on the device);
  // LayerFfn then passes kAll and the backend applies its own selection.
  virtual bool selects_on_device() const { return false; }
  virtual absl::Status Begin(const PartCall& call) = 0;
  // Completes the call begun last (same `call`): output += the part's partial sum. Returns the
  // call's computed neurons (Σ over tokens), weight bytes (a device predictor's included) and the
  // backend's own time (GPU: between its events).
  virtual absl::StatusOr<FfnStats> Finish(const PartCall& call) = 0;
};

// The CPU backend over the mapped weights: the row routine (ffn_rows.h). `separate_partial`
// false: it accumulates straight into the residual (the CPU part of a layer); true: into a buffer
// of its own that Finish adds, asynchronous() true: a CPU stand-in for the GPU part, which
// exercises the split and the merge exactly as the GPU part does, on any machine.
class CpuPartBackend : public PartBackend {
 public:
  CpuPartBackend(const Model& model, int64_t layer, std::vector<int32_t> neurons,
                 bool separate_partial, std::shared_ptr<const FiringThresholds> firing);
  std::string_view device() const override { return "cpu"; }
  bool asynchronous() const override { return separate_partial_; }
  absl::Status Begin(const PartCall& call) override;
  absl::StatusOr<FfnStats> Finish(const PartCall& call) override;

 private:
  const Model& model_;
  int64_t layer_;
  std::vector<int32_t> neurons_;  // the part's, ascending
  bool whole_layer_;              // the part holds every neuron: kAll runs the dense kernels
  bool separate_partial_;
  std::shared_ptr<const FiringThresholds> firing_;  // null: no thresholds
  std::vector<float> partial_;                      // [n, dim] when separate_partial_
  FfnStats pending_;
};

}  // namespace pinfer
