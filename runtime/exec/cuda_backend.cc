// cuda_backend.h over pinfer_cuda (built when PINFER_CUDA is on).
#include "runtime/exec/cuda_backend.h"

#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/cuda/attention.h"
#include "runtime/cuda/buffers.h"
#include "runtime/cuda/device.h"
#include "runtime/cuda/kernels.h"
#include "runtime/exec/cuda_backend_internal.h"
#include "runtime/exec/kv_cache.h"

namespace pinfer {
namespace {

cuda::DeviceMatrix OnDevice(const BackendMatrix& m) {
  return cuda::DeviceMatrix{m.dtype, m.rows, m.cols, m.data, m.row_bytes};
}

// A sequence's device KV cache: keys and values [slots, context, kv_dim] f16 each, the layout of
// an f16 KvCache (so the context shift goes through one).
class CudaKvStore : public KvStore {
 public:
  CudaKvStore(const ModelConfig& config, int64_t slots, int64_t context, BackendBuffer keys,
              BackendBuffer values)
      : config_(config), slots_(slots), context_(context), keys_(std::move(keys)),
        values_(std::move(values)) {
    config_.n_layers = slots;
  }
  uint64_t Bytes() const override { return keys_.size() + values_.size(); }
  int64_t slots() const override { return slots_; }
  int64_t context() const override { return context_; }

  size_t SlotBytes() const { return static_cast<size_t>(context_ * config_.kv_dim()) * 2; }
  void* keys(int64_t slot) const {
    return static_cast<uint8_t*>(keys_.data()) + static_cast<size_t>(slot) * SlotBytes();
  }
  void* values(int64_t slot) const {
    return static_cast<uint8_t*>(values_.data()) + static_cast<size_t>(slot) * SlotBytes();
  }
  const ModelConfig& config() const { return config_; }  // n_layers = slots
  const BackendBuffer& key_buffer() const { return keys_; }
  const BackendBuffer& value_buffer() const { return values_; }

 private:
  ModelConfig config_;
  int64_t slots_, context_;
  BackendBuffer keys_, values_;
};

class CudaBackend : public Backend {
 public:
  explicit CudaBackend(cuda::Stream stream) : stream_(std::move(stream)) {}
  ~CudaBackend() override {
    (void)stream_.Synchronize();
    ReleaseWeights();
  }

  std::string_view name() const override { return "cuda"; }
  bool host() const override { return false; }
  cuda::Stream& stream() { return stream_; }

  std::optional<uint64_t> FreeMemoryBytes() const override {
    absl::StatusOr<int> device = cuda::CurrentDevice();
    if (!device.ok()) return std::nullopt;
    absl::StatusOr<cuda::DeviceInfo> info = cuda::GetDeviceInfo(*device);
    if (!info.ok()) return std::nullopt;
    return info->free_memory_bytes;
  }

  absl::Status CopyIn(void* dst, const void* host_src, size_t bytes) override {
    return cuda::CopyToDevice(stream_, dst, host_src, bytes);
  }
  absl::Status CopyOut(void* host_dst, const void* src, size_t bytes) override {
    return cuda::CopyToHost(stream_, host_dst, src, bytes);
  }
  absl::Status Synchronize() override { return stream_.Synchronize(); }

  absl::Status RmsNorm(const float* x, const float* weight, int64_t rows, int64_t dim, float eps,
                       float* out) override {
    return cuda::RmsNorm(stream_, x, weight, rows, dim, eps, out);
  }
  absl::Status ShiftedRelu(float* x, int64_t count, float shift) override {
    return cuda::ShiftedRelu(stream_, x, count, shift);
  }
  absl::Status MatMul(const BackendMatrix& w, const float* x, int64_t n, float* y) override {
    return cuda::MatMul(stream_, OnDevice(w), x, n, y);
  }
  absl::Status Rope(float* v, int64_t n, int64_t n_heads, int64_t head_dim, int64_t pos0,
                    const RopeFrequencies& rope) override {
    return cuda::RopeInterleaved(stream_, v, n, n_heads, head_dim, pos0, rope);
  }
  absl::Status Add(const float* x, int64_t count, float* y) override {
    return cuda::Add(stream_, x, count, y);
  }

  absl::StatusOr<std::unique_ptr<KvStore>> CreateKv(const ModelConfig& config, int64_t slots,
                                                    int64_t context, DType) override {
    const size_t half = static_cast<size_t>(slots * context * config.kv_dim()) * 2;
    absl::StatusOr<BackendBuffer> keys = Allocate(half, MemoryPart::kKv);
    if (!keys.ok()) return keys.status();
    absl::StatusOr<BackendBuffer> values = Allocate(half, MemoryPart::kKv);
    if (!values.ok()) return values.status();
    return std::make_unique<CudaKvStore>(config, slots, context, *std::move(keys),
                                         *std::move(values));
  }

  absl::Status WriteKv(KvStore& kv, int64_t slot, int64_t pos0, int64_t n, const float* keys,
                       const float* values) override {
    auto& store = static_cast<CudaKvStore&>(kv);
    return cuda::WriteKvCache(stream_, Shape(store), keys, values, pos0, n, store.keys(slot),
                              store.values(slot));
  }

  absl::Status Attend(const KvStore& kv, int64_t slot, const float* q, int64_t pos0, int64_t n,
                      float* out, uint64_t* kv_bytes) override {
    const auto& store = static_cast<const CudaKvStore&>(kv);
    *kv_bytes += 2 * static_cast<uint64_t>(pos0 + n) * store.config().kv_dim() * 2;
    return cuda::Attention(stream_, Shape(store), q, store.keys(slot), store.values(slot), pos0, n,
                           out);
  }

  // Rare (a context shift): the whole cache goes through an f16 KvCache on the host.
  absl::Status ShiftKv(KvStore& kv, int64_t n_past, int64_t keep, int64_t discard) override {
    auto& store = static_cast<CudaKvStore&>(kv);
    absl::StatusOr<KvCache> host = KvCache::Create(store.config(), store.context(), DType::kF16);
    if (!host.ok()) return host.status();
    const size_t bytes = store.key_buffer().size();
    if (host->key_bytes().size() != bytes) {
      return absl::InternalError("the device KV cache and its host copy differ in size");
    }
    for (absl::Status s :
         {CopyOut(host->key_bytes().data(), store.key_buffer().data(), bytes),
          CopyOut(host->value_bytes().data(), store.value_buffer().data(), bytes), Synchronize()}) {
      if (!s.ok()) return s;
    }
    if (absl::Status s = host->Shift(n_past, keep, discard); !s.ok()) return s;
    for (absl::Status s :
         {CopyIn(store.key_buffer().data(), host->key_bytes().data(), bytes),
          CopyIn(store.value_buffer().data(), host->value_bytes().data(), bytes), Synchronize()}) {
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

 protected:
  absl::StatusOr<void*> AllocateRaw(size_t bytes) override {
    absl::StatusOr<cuda::DeviceBuffer> buffer = cuda::DeviceBuffer::Allocate(bytes);
    if (!buffer.ok()) return buffer.status();
    void* data = buffer->data();
    buffers_.emplace(data, *std::move(buffer));
    return data;
  }
  void FreeRaw(void* data) override {
    // Freed memory may still be read by enqueued work: wait for it first (frees are rare).
    (void)stream_.Synchronize();
    buffers_.erase(data);
  }

 private:
  static cuda::AttentionShape Shape(const CudaKvStore& store) {
    const ModelConfig& c = store.config();
    return {c.n_heads, c.n_kv_heads, c.head_dim, c.kv_dim(), DType::kF16};
  }

  cuda::Stream stream_;
  std::unordered_map<void*, cuda::DeviceBuffer> buffers_;
};

}  // namespace

cuda::Stream* CudaStreamOf(Backend& backend) {
  auto* cuda = dynamic_cast<CudaBackend*>(&backend);
  return cuda != nullptr ? &cuda->stream() : nullptr;
}

absl::StatusOr<std::shared_ptr<Backend>> CreateCudaBackend() {
  if (absl::Status s = cuda::CheckDeviceAvailable(); !s.ok()) return s;
  absl::StatusOr<cuda::Stream> stream = cuda::Stream::Create();
  if (!stream.ok()) return stream.status();
  return std::make_shared<CudaBackend>(*std::move(stream));
}

}  // namespace pinfer
