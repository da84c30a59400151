// Attention against reference::Attention: decode (n = 1) and prefill (n > 1), with and without
// GQA, head sizes below and above the vector length, a KV stride wider than the heads, on every
// SIMD target and thread count.
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

std::vector<Case> AllCases() {
  std::vector<Case> cases;
  for (int64_t head_dim : {8, 12, 64, 6}) {
    for (int64_t n_kv_heads : {8, 4, 1}) {
      for (auto [pos0, n] : {std::pair<int64_t, int64_t>{0, 1}, {20, 1}, {0, 7}, {13, 9}}) {
        AttentionShape shape;
        shape.n_heads = 8;
        shape.n_kv_heads = n_kv_heads;
        shape.head_dim = head_dim;
        shape.kv_stride = n_kv_heads * head_dim + 4;  // room between positions (a wider cache)
        cases.push_back({shape, pos0, n});
      }
    }
  }
  return cases;
}

TEST_P(AttentionTest, MatchesReference) {
  uint32_t seed = 1;
  for (const Case& c : AllCases()) {
    SCOPED_TRACE(::testing::Message() << "head_dim " << c.shape.head_dim << " kv_heads "
                                      << c.shape.n_kv_heads << " pos0 " << c.pos0 << " n " << c.n);
    const int64_t positions = c.pos0 + c.n;
    const std::vector<float> q = RandomVector(c.n * c.shape.n_heads * c.shape.head_dim, seed++);
    const std::vector<float> k = RandomVector(positions * c.shape.kv_stride, seed++);
    const std::vector<float> v = RandomVector(positions * c.shape.kv_stride, seed++);
    std::vector<float> expected(q.size()), actual(q.size(), -7.0f);
    reference::Attention(c.shape, q.data(), k.data(), v.data(), c.pos0, c.n, expected.data());
    Attention(c.shape, q.data(), k.data(), v.data(), c.pos0, c.n, actual.data());
    float max_v = 0.0f;
    for (float x : v) max_v = std::max(max_v, std::fabs(x));
    for (size_t i = 0; i < q.size(); ++i) ASSERT_NEAR(actual[i], expected[i], 1e-5 * max_v) << i;
  }
}

INSTANTIATE_TEST_SUITE_P(AllTargets, AttentionTest, ::testing::ValuesIn(AllTargetsAndThreads()),
                         ParamName);

}  // namespace
}  // namespace pinfer::cpu::testing
