// Attention over a GPU KV cache (f32 and f16) against the CPU scalar reference: decode, causal
// prefill, GQA, several key splits, query chunking; and the cache writes. Skipped without a device.
#include "runtime/cuda/attention.h"

#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "format/half.h"
#include "runtime/cpu/reference_kernels.h"
#include "runtime/cuda/tuning.h"
#include "tests/cuda/cuda_test_util.h"

namespace pinfer::cuda {
namespace {

using testing::CudaTest;
using testing::ExpectClose;
using testing::RandomVector;

struct Case {
  int64_t n_heads, n_kv_heads, head_dim, pos0, n;
};

std::string Describe(const Case& c, DType kv_dtype) {
  return absl::StrFormat("Attention %d/%d heads, head_dim %d, pos0 %d, n %d, %s cache", c.n_heads,
                         c.n_kv_heads, c.head_dim, c.pos0, c.n, DTypeName(kv_dtype));
}

class AttentionTest : public CudaTest {
 protected:
  void Check(const Case& c, DType kv_dtype) {
    cpu::AttentionShape cpu_shape;
    cpu_shape.n_heads = c.n_heads;
    cpu_shape.n_kv_heads = c.n_kv_heads;
    cpu_shape.head_dim = c.head_dim;
    cpu_shape.kv_stride = c.n_kv_heads * c.head_dim + 8;  // padded rows: the stride is honoured
    AttentionShape shape{c.n_heads, c.n_kv_heads, c.head_dim, cpu_shape.kv_stride, kv_dtype};

    const int64_t positions = c.pos0 + c.n;
    const size_t cache_size = static_cast<size_t>(positions * cpu_shape.kv_stride);
    std::vector<float> k = RandomVector(cache_size, 11);
    std::vector<float> v = RandomVector(cache_size, 12);
    const std::vector<float> q =
        RandomVector(static_cast<size_t>(c.n * c.n_heads * c.head_dim), 13);
    std::vector<uint16_t> k16(cache_size), v16(cache_size);
    if (kv_dtype == DType::kF16) {  // the reference sees what the f16 cache holds
      for (size_t i = 0; i < cache_size; ++i) {
        k16[i] = F32ToF16(k[i]);
        v16[i] = F32ToF16(v[i]);
        k[i] = F16ToF32(k16[i]);
        v[i] = F16ToF32(v16[i]);
      }
    }
    std::vector<float> want(q.size());
    cpu::reference::Attention(cpu_shape, DType::kF32, q.data(), k.data(), v.data(), c.pos0, c.n,
                              want.data());

    DeviceBuffer dk = kv_dtype == DType::kF16 ? ToDevice(k16) : ToDevice(k);
    DeviceBuffer dv = kv_dtype == DType::kF16 ? ToDevice(v16) : ToDevice(v);
    DeviceBuffer dq = ToDevice(q);
    DeviceBuffer dout = Allocate(q.size() * sizeof(float));
    PINFER_ASSERT_OK(Attention(stream(), shape, dq.As<float>(), dk.data(), dv.data(), c.pos0, c.n,
                               dout.As<float>()));
    ExpectClose(ToHost<float>(dout.data(), q.size()), want, 1e-4, Describe(c, kv_dtype));
  }
};

TEST_F(AttentionTest, DecodeMatchesReference) {
  for (DType kv : {DType::kF32, DType::kF16}) {
    Check({4, 4, 16, 0, 1}, kv);        // the first token: one key
    Check({4, 2, 16, 255, 1}, kv);      // exactly one full split
    Check({32, 8, 128, 700, 1}, kv);    // Llama-3-style GQA, three splits
    Check({32, 32, 128, 4095, 1}, kv);  // 7B at a full 4K context
  }
}

TEST_F(AttentionTest, CausalPrefillMatchesReference) {
  for (DType kv : {DType::kF32, DType::kF16}) {
    Check({4, 2, 16, 0, 7}, kv);
    Check({8, 2, 64, 300, 40}, kv);  // continues a cached prefix, crosses split boundaries
    Check({3, 1, 6, 0, 260}, kv);    // odd head_dim, multi-query
  }
}

TEST_F(AttentionTest, LongPrefillInQueryChunks) {
  const KernelTuning saved = GetKernelTuning();
  MutableKernelTuning().attention_partials_bytes = 4096;  // a few queries per chunk
  Check({4, 2, 32, 10, 50}, DType::kF32);
  MutableKernelTuning() = saved;
}

TEST_F(AttentionTest, WriteKvCacheStoresRowsAtTheirPositions) {
  for (DType kv : {DType::kF32, DType::kF16}) {
    const AttentionShape shape{4, 2, 8, 2 * 8 + 4, kv};
    const int64_t capacity = 10, pos0 = 3, n = 4, width = 2 * 8;
    const size_t element = kv == DType::kF16 ? 2 : 4;
    const size_t cache_bytes = static_cast<size_t>(capacity * shape.kv_stride) * element;
    DeviceBuffer k_cache = Allocate(cache_bytes);
    DeviceBuffer v_cache = Allocate(cache_bytes);
    PINFER_ASSERT_OK(ZeroDevice(stream(), k_cache.data(), cache_bytes));
    PINFER_ASSERT_OK(ZeroDevice(stream(), v_cache.data(), cache_bytes));
    const std::vector<float> k_new = RandomVector(static_cast<size_t>(n * width), 21);
    const std::vector<float> v_new = RandomVector(static_cast<size_t>(n * width), 22);
    DeviceBuffer dk = ToDevice(k_new);
    DeviceBuffer dv = ToDevice(v_new);
    PINFER_ASSERT_OK(WriteKvCache(stream(), shape, dk.As<float>(), dv.As<float>(), pos0, n,
                                  k_cache.data(), v_cache.data()));

    const size_t elements = static_cast<size_t>(capacity * shape.kv_stride);
    std::vector<float> k_host(elements), v_host(elements);
    if (kv == DType::kF16) {
      const std::vector<uint16_t> k16 = ToHost<uint16_t>(k_cache.data(), elements);
      const std::vector<uint16_t> v16 = ToHost<uint16_t>(v_cache.data(), elements);
      for (size_t i = 0; i < elements; ++i) {
        k_host[i] = F16ToF32(k16[i]);
        v_host[i] = F16ToF32(v16[i]);
      }
    } else {
      k_host = ToHost<float>(k_cache.data(), elements);
      v_host = ToHost<float>(v_cache.data(), elements);
    }
    for (int64_t p = 0; p < capacity; ++p) {
      for (int64_t j = 0; j < shape.kv_stride; ++j) {
        const size_t at = static_cast<size_t>(p * shape.kv_stride + j);
        float want_k = 0.0f, want_v = 0.0f;
        if (p >= pos0 && p < pos0 + n && j < width) {
          const size_t from = static_cast<size_t>((p - pos0) * width + j);
          want_k = kv == DType::kF16 ? F16ToF32(F32ToF16(k_new[from])) : k_new[from];
          want_v = kv == DType::kF16 ? F16ToF32(F32ToF16(v_new[from])) : v_new[from];
        }
        ASSERT_EQ(k_host[at], want_k) << "position " << p << " element " << j;
        ASSERT_EQ(v_host[at], want_v) << "position " << p << " element " << j;
      }
    }
  }
}

TEST_F(AttentionTest, RejectsBadShapes) {
  DeviceBuffer buffer = Allocate(1024);
  float* p = buffer.As<float>();
  const AttentionShape not_grouped{6, 4, 8, 32, DType::kF32};
  EXPECT_EQ(Attention(stream(), not_grouped, p, p, p, 0, 1, p).code(),
            absl::StatusCode::kInvalidArgument);
  const AttentionShape q8_cache{4, 4, 8, 32, DType::kQ8_0};
  EXPECT_EQ(Attention(stream(), q8_cache, p, p, p, 0, 1, p).code(),
            absl::StatusCode::kInvalidArgument);
  const AttentionShape short_stride{4, 4, 8, 16, DType::kF32};
  EXPECT_EQ(Attention(stream(), short_stride, p, p, p, 0, 1, p).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace pinfer::cuda
