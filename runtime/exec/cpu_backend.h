// The CPU implementation of the backend interface (backend.h), in two roles:
//   CpuBackend::Host()     the executor's own memory: the layers the plan leaves on the CPU (and
//                          every layer without a plan) run on it over the mapped weights, with the
//                          sequence's KvCache (its cache type) as their KV store;
//   CpuBackend::StandIn()  a stand-in for a device: its memory is host buffers of its own (weights
//                          are copied in at upload, the KV cache is an f16 KvCache of its own), so
//                          the executor's copies between the host and the device are exercised
//                          exactly as with a GPU and a missing one gives wrong logits. The plan's
//                          device parts run on it under --gpu-backend cpu and in the tests.
// Both compute with runtime/cpu's kernels.
#pragma once

#include <memory>

#include "runtime/exec/backend.h"

namespace pinfer {

class CpuBackend : public Backend {
 public:
  static std::unique_ptr<CpuBackend> Host();
  static std::unique_ptr<CpuBackend> StandIn();
  ~CpuBackend() override;

  std::string_view name() const override { return stand_in_ ? "cpu stand-in" : "cpu"; }
  bool host() const override { return !stand_in_; }

  absl::Status CopyIn(void* dst, const void* host_src, size_t bytes) override;
  absl::Status CopyOut(void* host_dst, const void* src, size_t bytes) override;
  absl::Status Synchronize() override { return absl::OkStatus(); }

  absl::Status RmsNorm(const float* x, const float* weight, int64_t rows, int64_t dim, float eps,
                       float* out) override;
  absl::Status LayerNorm(const float* x, const float* weight, const float* bias, int64_t rows,
                         int64_t dim, float eps, float* out) override;
  absl::Status AddBias(const float* bias, int64_t rows, int64_t cols, float* y) override;
  // Every architecture: the CPU has every kernel.
  absl::Status SupportsModel(const ModelConfig&) const override { return absl::OkStatus(); }
  absl::Status ShiftedRelu(float* x, int64_t count, float shift) override;
  absl::Status MatMul(const BackendMatrix& w, const float* x, int64_t n, float* y) override;
  absl::Status Rope(float* v, int64_t n, int64_t n_heads, int64_t head_dim, int64_t pos0,
                    const RopeFrequencies& rope) override;
  absl::Status Add(const float* x, int64_t count, float* y) override;

  absl::StatusOr<std::unique_ptr<KvStore>> CreateKv(const ModelConfig& config, int64_t slots,
                                                    int64_t context, DType host_type) override;
  absl::Status WriteKv(KvStore& kv, int64_t slot, int64_t pos0, int64_t n, const float* keys,
                       const float* values) override;
  absl::Status Attend(const KvStore& kv, int64_t slot, const float* q, int64_t pos0, int64_t n,
                      float* out, uint64_t* kv_bytes) override;
  absl::Status ShiftKv(KvStore& kv, int64_t n_past, int64_t keep, int64_t discard) override;

 protected:
  absl::StatusOr<void*> AllocateRaw(size_t bytes) override;
  void FreeRaw(void* data) override;

 private:
  explicit CpuBackend(bool stand_in) : stand_in_(stand_in) {}
  bool stand_in_;
};

}  // namespace pinfer
