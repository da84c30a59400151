// Attention against reference::Attention for each KV cache type (f32, f16, q8_0): decode (n = 1)
// and prefill (n > 1), with and without GQA, head sizes below and above the vector length (8, 12,
// 6, and the real 64 and 128), key counts that are not a multiple of the vector or of the kernel's
// four-position tile, a KV stride wider than the heads, on every SIMD target and thread count.
// Kernel and reference read the same encoded cache bytes (the reference decodes them with
// format/quant.h), so the type changes what is multiplied, not the tolerance.
//
// Tolerance: the kernel keeps everything in f32 where the reference sums in f64. A score q·k/√d
// is off by < head_dim·2^-24·Σ|q_d·k_d|/√d (< 1e-6 here), which moves each probability by that
// much relatively; the weighted sum of <= 40 value rows adds < 40·2^-24 of max|v|. Together
// < 1e-5·max|v|, checked per element.
#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/cpu/kernels.h"
#include "runtime/cpu/reference_kernels.h"
#include "tests/cpu/kernel_test_util.h"

namespace pinfer::cpu::testing {
namespace {

class AttentionTest : public KernelTest {};

struct Case {
  AttentionShape shape;
  int64_t pos0, n;
};

// For q8_0 a cache row is whole blocks of 32: the heads of the smaller shapes share blocks, and
// the stride rounds up to a block past the heads.
std::vector<Case> AllCases(DType kv_type) {
  std::vector<Case> cases;
  for (int64_t head_dim : {8, 12, 64, 6, 128}) {
    for (int64_t n_kv_heads : {8, 4, 1}) {
      const int64_t row = n_kv_heads * head_dim;
      if (kv_type == DType::kQ8_0 && row % 32 != 0) continue;
      for (auto [pos0, n] :
           {std::pair<int64_t, int64_t>{0, 1}, {20, 1}, {0, 7}, {13, 9}, {36, 1}}) {
        if (head_dim == 128 && n > 1 && pos0 > 0) continue;  // the biggest shape: fewer cases
        AttentionShape shape;
        shape.n_heads = 8;
        shape.n_kv_heads = n_kv_heads;
        shape.head_dim = head_dim;
        shape.kv_stride = kv_type == DType::kQ8_0 ? row + 32 : row + 4;  // room between positions
        cases.push_back({shape, pos0, n});
      }
    }
  }
  return cases;
}

void ExpectMatchesReference(DType kv_type, uint32_t seed) {
  const std::vector<Case> cases = AllCases(kv_type);
  ASSERT_GE(cases.size(), 40u);
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message()
                 << DTypeName(kv_type) << " head_dim " << c.shape.head_dim << " kv_heads "
                 << c.shape.n_kv_heads << " pos0 " << c.pos0 << " n " << c.n);
    const int64_t positions = c.pos0 + c.n;
    const std::vector<float> q = RandomVector(c.n * c.shape.n_heads * c.shape.head_dim, seed++);
    const TestMatrix k = RandomMatrix(kv_type, positions, c.shape.kv_stride, seed++);
    const TestMatrix v = RandomMatrix(kv_type, positions, c.shape.kv_stride, seed++);
    std::vector<float> expected(q.size()), actual(q.size(), -7.0f);
    reference::Attention(c.shape, kv_type, q.data(), k.bytes.data(), v.bytes.data(), c.pos0, c.n,
                         expected.data());
    Attention(c.shape, kv_type, q.data(), k.bytes.data(), v.bytes.data(), c.pos0, c.n,
              actual.data());
    float max_v = 0.0f;
    for (float x : v.decoded) max_v = std::max(max_v, std::fabs(x));
    for (size_t i = 0; i < q.size(); ++i) ASSERT_NEAR(actual[i], expected[i], 1e-5 * max_v) << i;
  }
}

TEST_P(AttentionTest, F32CacheMatchesReference) { ExpectMatchesReference(DType::kF32, 1); }
TEST_P(AttentionTest, F16CacheMatchesReference) { ExpectMatchesReference(DType::kF16, 1000); }
TEST_P(AttentionTest, Q8_0CacheMatchesReference) { ExpectMatchesReference(DType::kQ8_0, 2000); }

// The reference itself reads the type: the same f32 keys and values through an f16 and a q8_0
// cache give outputs that differ from the f32 cache's by the rounding of the type (and do differ).
TEST(AttentionReferenceTest, ReadsTheCacheType) {
  AttentionShape shape{8, 4, 64, 256};
  const int64_t positions = 30;
  const std::vector<float> q = RandomVector(8 * 64, 5);
  const TestMatrix k32 = RandomMatrix(DType::kF32, positions, 256, 6);
  const TestMatrix v32 = RandomMatrix(DType::kF32, positions, 256, 7);
  std::vector<float> exact(q.size());
  reference::Attention(shape, DType::kF32, q.data(), k32.bytes.data(), v32.bytes.data(),
                       positions - 1, 1, exact.data());
  for (auto [type, bound] : {std::pair<DType, float>{DType::kF16, 2e-3f}, {DType::kQ8_0, 4e-2f}}) {
    SCOPED_TRACE(DTypeName(type));
    std::vector<uint8_t> k(positions * *RowBytes(type, 256)), v(k.size());
    reference::EncodeRows(type, k32.decoded.data(), positions, 256, k.data());
    reference::EncodeRows(type, v32.decoded.data(), positions, 256, v.data());
    std::vector<float> rounded(q.size());
    reference::Attention(shape, type, q.data(), k.data(), v.data(), positions - 1, 1,
                         rounded.data());
    float most = 0.0f;
    for (size_t i = 0; i < q.size(); ++i) most = std::max(most, std::fabs(rounded[i] - exact[i]));
    EXPECT_GT(most, 0.0f);
    EXPECT_LT(most, bound);
  }
}

INSTANTIATE_TEST_SUITE_P(AllTargets, AttentionTest, ::testing::ValuesIn(AllTargetsAndThreads()),
                         ParamName);

}  // namespace
}  // namespace pinfer::cpu::testing
