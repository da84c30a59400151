#include "runtime/exec/cpu_backend.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "absl/strings/str_cat.h"
#include "runtime/cpu/layer_norm.h"
#include "runtime/exec/kv_cache.h"

namespace pinfer {
namespace {

// The stand-in's KV store: an f16 KvCache of its own, accounted while it lives.
class StandInKv : public KvStore {
 public:
  StandInKv(KvCache cache, Backend& owner) : cache_(std::move(cache)), owner_(owner) {
    owner_.Account(MemoryPart::kKv, static_cast<int64_t>(cache_.Bytes()));
  }
  ~StandInKv() override { owner_.Account(MemoryPart::kKv, -static_cast<int64_t>(cache_.Bytes())); }
  uint64_t Bytes() const override { return cache_.Bytes(); }
  int64_t slots() const override { return cache_.slots(); }
  int64_t context() const override { return cache_.context(); }
  KvCache* host_cache() override { return &cache_; }

 private:
  KvCache cache_;
  Backend& owner_;
};

KvCache& CacheOf(KvStore& kv) { return *kv.host_cache(); }
const KvCache& CacheOf(const KvStore& kv) { return *const_cast<KvStore&>(kv).host_cache(); }

absl::Status CheckSlot(const KvStore& kv, int64_t slot, int64_t pos0, int64_t n) {
  if (slot < 0 || slot >= kv.slots() || pos0 < 0 || pos0 + n > kv.context()) {
    return absl::InternalError(absl::StrCat("KV slot ", slot, " positions [", pos0, ", ", pos0 + n,
                                            ") outside a store of ", kv.slots(), " slots and ",
                                            kv.context(), " positions"));
  }
  return absl::OkStatus();
}

}  // namespace

std::unique_ptr<CpuBackend> CpuBackend::Host() {
  return std::unique_ptr<CpuBackend>(new CpuBackend(/*stand_in=*/false));
}

std::unique_ptr<CpuBackend> CpuBackend::StandIn() {
  return std::unique_ptr<CpuBackend>(new CpuBackend(/*stand_in=*/true));
}

CpuBackend::~CpuBackend() { ReleaseWeights(); }

absl::StatusOr<void*> CpuBackend::AllocateRaw(size_t bytes) {
  // 64-byte aligned, as the mapped tensors are: the SIMD kernels read the copies the same way.
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (p == nullptr) return absl::ResourceExhaustedError("out of host memory");
  return p;
}

void CpuBackend::FreeRaw(void* data) { std::free(data); }

absl::Status CpuBackend::CopyIn(void* dst, const void* host_src, size_t bytes) {
  std::memcpy(dst, host_src, bytes);
  return absl::OkStatus();
}

absl::Status CpuBackend::CopyOut(void* host_dst, const void* src, size_t bytes) {
  std::memcpy(host_dst, src, bytes);
  return absl::OkStatus();
}

absl::Status CpuBackend::RmsNorm(const float* x, const float* weight, int64_t rows, int64_t dim,
                                 float eps, float* out) {
  for (int64_t t = 0; t < rows; ++t) cpu::RmsNorm(x + t * dim, weight, dim, eps, out + t * dim);
  return absl::OkStatus();
}

absl::Status CpuBackend::LayerNorm(const float* x, const float* weight, const float* bias,
                                   int64_t rows, int64_t dim, float eps, float* out) {
  for (int64_t t = 0; t < rows; ++t) {
    cpu::LayerNorm(x + t * dim, weight, bias, dim, eps, out + t * dim);
  }
  return absl::OkStatus();
}

absl::Status CpuBackend::AddBias(const float* bias, int64_t rows, int64_t cols, float* y) {
  cpu::AddBias(bias, rows, cols, y);
  return absl::OkStatus();
}

absl::Status CpuBackend::ShiftedRelu(float* x, int64_t count, float shift) {
  cpu::ShiftedRelu(x, count, shift);
  return absl::OkStatus();
}

absl::Status CpuBackend::MatMul(const BackendMatrix& w, const float* x, int64_t n, float* y) {
  cpu::MatMul(w.view(), x, n, y);
  return absl::OkStatus();
}

absl::Status CpuBackend::Rope(float* v, int64_t n, int64_t n_heads, int64_t head_dim, int64_t pos0,
                              const RopeFrequencies& rope) {
  for (int64_t t = 0; t < n; ++t) {
    cpu::RopeInterleaved(v + t * n_heads * head_dim, n_heads, head_dim, pos0 + t, rope);
  }
  return absl::OkStatus();
}

absl::Status CpuBackend::Add(const float* x, int64_t count, float* y) {
  cpu::Add(x, count, y);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<KvStore>> CpuBackend::CreateKv(const ModelConfig& config,
                                                              int64_t slots, int64_t context,
                                                              DType host_type) {
  ModelConfig held = config;
  held.n_layers = slots;
  // A device stores f16, as the plan accounts; the host the sequence's own type.
  absl::StatusOr<KvCache> cache = KvCache::Create(held, context, stand_in_ ? DType::kF16 : host_type);
  if (!cache.ok()) return cache.status();
  if (!stand_in_) return std::make_unique<KvCache>(*std::move(cache));
  return std::make_unique<StandInKv>(*std::move(cache), *this);
}

absl::Status CpuBackend::WriteKv(KvStore& kv, int64_t slot, int64_t pos0, int64_t n,
                                 const float* keys, const float* values) {
  if (absl::Status s = CheckSlot(kv, slot, pos0, n); !s.ok()) return s;
  CacheOf(kv).Write(slot, pos0, n, keys, values);
  return absl::OkStatus();
}

absl::Status CpuBackend::Attend(const KvStore& kv, int64_t slot, const float* q, int64_t pos0,
                                int64_t n, float* out, uint64_t* kv_bytes) {
  if (absl::Status s = CheckSlot(kv, slot, pos0, n); !s.ok()) return s;
  *kv_bytes += CacheOf(kv).Attend(slot, q, pos0, n, out);
  return absl::OkStatus();
}

absl::Status CpuBackend::ShiftKv(KvStore& kv, int64_t n_past, int64_t keep, int64_t discard) {
  return CacheOf(kv).Shift(n_past, keep, discard);
}

}  // namespace pinfer
