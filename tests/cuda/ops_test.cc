// RMSNorm, RoPE, softmax, the FFN activations and the small element-wise operations on the GPU
// against the CPU scalar references. Skipped without a CUDA device.
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "runtime/cpu/reference_kernels.h"
#include "tests/cuda/cuda_test_util.h"

namespace pinfer::cuda {
namespace {

using testing::CudaTest;
using testing::ExpectClose;
using testing::RandomVector;

class OpsTest : public CudaTest {};

TEST_F(OpsTest, RmsNormMatchesReference) {
  for (int64_t n : {int64_t{67}, int64_t{4096}}) {
    const int64_t rows = 3;
    const std::vector<float> x = RandomVector(static_cast<size_t>(rows * n), 1, 3.0f);
    const std::vector<float> weight = RandomVector(static_cast<size_t>(n), 2);
    std::vector<float> want(x.size());
    for (int64_t r = 0; r < rows; ++r) {
      cpu::reference::RmsNorm(x.data() + r * n, weight.data(), n, 1e-5f, want.data() + r * n);
    }
    DeviceBuffer dx = ToDevice(x);
    DeviceBuffer dw = ToDevice(weight);
    DeviceBuffer dout = Allocate(x.size() * sizeof(float));
    PINFER_ASSERT_OK(
        RmsNorm(stream(), dx.As<float>(), dw.As<float>(), rows, n, 1e-5f, dout.As<float>()));
    ExpectClose(ToHost<float>(dout.data(), x.size()), want, 1e-5, absl::StrFormat("RmsNorm %d", n));
    // In place.
    PINFER_ASSERT_OK(
        RmsNorm(stream(), dx.As<float>(), dw.As<float>(), rows, n, 1e-5f, dx.As<float>()));
    ExpectClose(ToHost<float>(dx.data(), x.size()), want, 1e-5,
                absl::StrFormat("RmsNorm in place %d", n));
  }
}

TEST_F(OpsTest, RopeMatchesReference) {
  struct Case {
    int64_t n_tokens, n_heads, head_dim, pos0;
  };
  for (const Case& c : {Case{1, 32, 128, 0}, Case{1, 8, 128, 4095}, Case{5, 3, 6, 1000}}) {
    const int64_t row = c.n_heads * c.head_dim;
    const std::vector<float> v = RandomVector(static_cast<size_t>(c.n_tokens * row), 3);
    std::vector<float> want = v;
    for (int64_t t = 0; t < c.n_tokens; ++t) {
      cpu::reference::RopeInterleaved(want.data() + t * row, c.n_heads, c.head_dim, c.pos0 + t,
                                      10000.0);
    }
    DeviceBuffer dv = ToDevice(v);
    PINFER_ASSERT_OK(RopeInterleaved(stream(), dv.As<float>(), c.n_tokens, c.n_heads, c.head_dim,
                                     c.pos0, 10000.0));
    ExpectClose(ToHost<float>(dv.data(), v.size()), want, 1e-6,
                absl::StrFormat("Rope %d tokens at %d", c.n_tokens, c.pos0));
  }
  DeviceBuffer dv = Allocate(64);
  EXPECT_EQ(RopeInterleaved(stream(), dv.As<float>(), 1, 1, 5, 0, 10000.0).code(),
            absl::StatusCode::kInvalidArgument);  // odd head_dim
}

// A model's RoPE scaling (Llama 3's per-pair divisors, passed to the kernel by value) as the
// reference applies it.
TEST_F(OpsTest, ScaledRopeMatchesReference) {
  for (const int64_t head_dim : {int64_t{128}, int64_t{512}}) {
    RopeFrequencies rope(500000.0);
    rope.n_factors = static_cast<int32_t>(head_dim / 2);
    for (int32_t i = 0; i < rope.n_factors; ++i) rope.factors[i] = 1.0f + 0.25f * (i % 29);
    const int64_t n_tokens = 3, n_heads = 4, pos0 = 8000, row = n_heads * head_dim;
    const std::vector<float> v = RandomVector(static_cast<size_t>(n_tokens * row), 5);
    std::vector<float> want = v;
    for (int64_t t = 0; t < n_tokens; ++t) {
      cpu::reference::RopeInterleaved(want.data() + t * row, n_heads, head_dim, pos0 + t, rope);
    }
    DeviceBuffer dv = ToDevice(v);
    PINFER_ASSERT_OK(
        RopeInterleaved(stream(), dv.As<float>(), n_tokens, n_heads, head_dim, pos0, rope));
    ExpectClose(ToHost<float>(dv.data(), v.size()), want, 1e-6,
                absl::StrFormat("scaled Rope, head_dim %d", head_dim));
    // A divisor table of another head size is refused.
    EXPECT_EQ(RopeInterleaved(stream(), dv.As<float>(), 1, 1, head_dim / 2, 0, rope).code(),
              absl::StatusCode::kInvalidArgument);
  }
}

TEST_F(OpsTest, SoftmaxMatchesReference) {
  for (int64_t n : {int64_t{7}, int64_t{1000}, int64_t{32000}}) {
    const int64_t rows = 2;
    const std::vector<float> x = RandomVector(static_cast<size_t>(rows * n), 4, 5.0f);
    std::vector<float> want = x;
    for (int64_t r = 0; r < rows; ++r) cpu::reference::Softmax(want.data() + r * n, n);
    DeviceBuffer dx = ToDevice(x);
    PINFER_ASSERT_OK(Softmax(stream(), dx.As<float>(), rows, n));
    ExpectClose(ToHost<float>(dx.data(), x.size()), want, 1e-5, absl::StrFormat("Softmax %d", n));
  }
}

TEST_F(OpsTest, FfnCombineMatchesReferenceForEveryActivation) {
  const int64_t n = 1000;
  const std::vector<float> gate = RandomVector(n, 5, 2.0f);
  const std::vector<float> up = RandomVector(n, 6, 2.0f);
  DeviceBuffer dgate = ToDevice(gate);
  DeviceBuffer dup = ToDevice(up);
  DeviceBuffer dout = Allocate(n * sizeof(float));
  for (ActivationKind act :
       {ActivationKind::kSilu, ActivationKind::kGelu, ActivationKind::kRelu, ActivationKind::kRelu2,
        ActivationKind::kDRelu, ActivationKind::kFatRelu, ActivationKind::kShiftedRelu}) {
    const float param = 0.25f;
    std::vector<float> want(n);
    cpu::reference::FfnCombine(act, param, gate.data(), up.data(), n, want.data());
    PINFER_ASSERT_OK(
        FfnCombine(stream(), act, param, dgate.As<float>(), dup.As<float>(), n, dout.As<float>()));
    ExpectClose(ToHost<float>(dout.data(), n), want, 1e-5,
                absl::StrFormat("FfnCombine activation %d", static_cast<int>(act)));
  }
}

TEST_F(OpsTest, ShiftedReluAndAdd) {
  const int64_t n = 777;
  const std::vector<float> x = RandomVector(n, 7);
  std::vector<float> want = x;
  cpu::reference::ShiftedRelu(want.data(), n, 0.5f);
  DeviceBuffer dx = ToDevice(x);
  PINFER_ASSERT_OK(ShiftedRelu(stream(), dx.As<float>(), n, 0.5f));
  EXPECT_EQ(ToHost<float>(dx.data(), n), want);

  const std::vector<float> y0 = RandomVector(n, 8);
  std::vector<float> sum = y0;
  cpu::reference::Add(want.data(), n, sum.data());
  DeviceBuffer dy = ToDevice(y0);
  PINFER_ASSERT_OK(Add(stream(), dx.As<float>(), n, dy.As<float>()));
  EXPECT_EQ(ToHost<float>(dy.data(), n), sum);
}

}  // namespace
}  // namespace pinfer::cuda
