// The runtime's predictor kernel (runtime/cpu/predictor_kernel.h) against LibTorch evaluating the
// same MLP on the same inputs, with the weights the artifact stores (f32, f16, q8_0), for one
// token and for batches; and against the scalar reference. The only test that includes LibTorch.
#include "runtime/cpu/predictor_kernel.h"

#include <ATen/ATen.h>  // LibTorch's tensor library: all this test needs

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "format/quant.h"
#include "gtest/gtest.h"
#include "runtime/cpu/kernels.h"

namespace pinfer {
namespace {

// A predictor with random weights encoded in `dtype`, and the same weights decoded back to f32
// (what LibTorch gets).
struct RandomPredictor {
  int64_t dim, rank, n_ff;
  DType dtype;
  std::vector<uint8_t> w1, w2;
  std::vector<float> b1, b2;
  std::vector<float> w1_f32, w2_f32;  // decoded
  float logit_threshold = 0;

  cpu::PredictorView View() const {
    cpu::PredictorView v;
    v.w1 = cpu::MakeMatrixView(dtype, rank, dim, w1.data());
    v.b1 = b1.data();
    v.w2 = cpu::MakeMatrixView(dtype, n_ff, rank, w2.data());
    v.b2 = b2.data();
    v.logit_threshold = logit_threshold;
    return v;
  }
};

std::vector<float> Random(std::mt19937& g, size_t n, float scale) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = normal(g);
  return v;
}

void EncodeMatrix(const std::vector<float>& values, int64_t rows, int64_t cols, DType dtype,
                  std::vector<uint8_t>& encoded, std::vector<float>& decoded) {
  const uint64_t row_bytes = *RowBytes(dtype, static_cast<uint64_t>(cols));
  encoded.resize(row_bytes * static_cast<uint64_t>(rows));
  decoded.resize(values.size());
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* row = encoded.data() + static_cast<uint64_t>(r) * row_bytes;
    ASSERT_TRUE(EncodeRow(values.data() + r * cols, static_cast<size_t>(cols), dtype, row).ok());
    ASSERT_TRUE(DecodeRow(row, static_cast<size_t>(cols), dtype, decoded.data() + r * cols).ok());
  }
}

RandomPredictor MakePredictor(int64_t dim, int64_t rank, int64_t n_ff, DType dtype, uint32_t seed) {
  std::mt19937 g(seed);
  RandomPredictor p{dim, rank, n_ff, dtype, {}, {}, {}, {}, {}, {}, 0.0f};
  EncodeMatrix(Random(g, static_cast<size_t>(rank * dim), 1.0f / std::sqrt(dim)), rank, dim, dtype,
               p.w1, p.w1_f32);
  EncodeMatrix(Random(g, static_cast<size_t>(n_ff * rank), 1.0f / std::sqrt(rank)), n_ff, rank,
               dtype, p.w2, p.w2_f32);
  p.b1 = Random(g, static_cast<size_t>(rank), 0.1f);
  p.b2 = Random(g, static_cast<size_t>(n_ff), 0.5f);
  p.b2[0] = -1.0f;  // keeps the shape of real predictors: rare neurons sit below zero
  p.logit_threshold = -0.25f;
  return p;
}

at::Tensor Tensor(const std::vector<float>& v, std::vector<int64_t> shape) {
  return at::from_blob(const_cast<float*>(v.data()), shape, at::kFloat).clone();
}

// LibTorch's hidden activations [n, rank] and logits [n, n_ff] for X [n, dim], in double
// precision, to serve as the truth.
struct TorchResult {
  std::vector<double> hidden, logits;
};
TorchResult TorchForward(const RandomPredictor& p, const std::vector<float>& x, int64_t n) {
  const at::Tensor w1 = Tensor(p.w1_f32, {p.rank, p.dim}).to(at::kDouble);
  const at::Tensor w2 = Tensor(p.w2_f32, {p.n_ff, p.rank}).to(at::kDouble);
  const at::Tensor b1 = Tensor(p.b1, {p.rank}).to(at::kDouble);
  const at::Tensor b2 = Tensor(p.b2, {p.n_ff}).to(at::kDouble);
  const at::Tensor xs = Tensor(x, {n, p.dim}).to(at::kDouble);
  const at::Tensor h = at::relu(at::addmm(b1, xs, w1.t())).contiguous();
  const at::Tensor z = at::addmm(b2, h, w2.t()).contiguous();
  return {std::vector<double>(h.data_ptr<double>(), h.data_ptr<double>() + h.numel()),
          std::vector<double>(z.data_ptr<double>(), z.data_ptr<double>() + z.numel())};
}

// Variance of the error of each activation value of a vector v fed to a product with weights of
// `dtype`: for q8_0/q4_0 weights the kernels may quantize their f32 activations to q8_0 (as
// llama.cpp does), a rounding error uniform in ±d/2 with d = absmax(block)/127, of variance
// d²/12; float weights see the activations as they are.
std::vector<double> QuantizationVariance(DType weights, const double* v, int64_t n) {
  std::vector<double> var(static_cast<size_t>(n), 0.0);
  if (weights != DType::kQ8_0 && weights != DType::kQ4_0) return var;
  for (int64_t b = 0; b < n; b += 32) {
    double amax = 0;
    for (int64_t k = b; k < std::min(n, b + 32); ++k) amax = std::max(amax, std::abs(v[k]));
    const double d = amax / 127;
    for (int64_t k = b; k < std::min(n, b + 32); ++k) var[static_cast<size_t>(k)] = d * d / 12;
  }
  return var;
}

// Per logit, how far the kernel may be from LibTorch's exact value: six standard deviations of
// the activation quantization errors propagated through both products (through the ReLU's
// active units: z = W2·relu(W1·x + b1) + b2 is W2·D·W1 on x, D the active mask), plus f32
// rounding of 1e-5 of each dot product's magnitude Σ|w·v|. Worst-case bounds would be far too
// loose for q8_0: the roundings are independent and cancel.
std::vector<double> LogitErrorBound(const RandomPredictor& p, const std::vector<float>& x,
                                    const TorchResult& truth, int64_t n) {
  constexpr double kRounding = 1e-5, kSigmas = 6;
  std::vector<double> bound(static_cast<size_t>(n * p.n_ff));
  for (int64_t t = 0; t < n; ++t) {
    const std::vector<double> xt(x.begin() + t * p.dim, x.begin() + (t + 1) * p.dim);
    const double* h = truth.hidden.data() + t * p.rank;
    const std::vector<double> var_x = QuantizationVariance(p.dtype, xt.data(), p.dim);
    const std::vector<double> var_h = QuantizationVariance(p.dtype, h, p.rank);
    std::vector<double> magnitude_h(static_cast<size_t>(p.rank));
    for (int64_t j = 0; j < p.rank; ++j) {
      double m = std::abs(p.b1[static_cast<size_t>(j)]);
      for (int64_t k = 0; k < p.dim; ++k) {
        m += std::abs(p.w1_f32[static_cast<size_t>(j * p.dim + k)] * xt[static_cast<size_t>(k)]);
      }
      magnitude_h[static_cast<size_t>(j)] = m;
    }
    std::vector<double> through(static_cast<size_t>(p.dim));
    for (int64_t i = 0; i < p.n_ff; ++i) {
      double var = 0, magnitude = std::abs(p.b2[static_cast<size_t>(i)]), rounding = 0;
      std::fill(through.begin(), through.end(), 0.0);
      for (int64_t j = 0; j < p.rank; ++j) {
        const double w = p.w2_f32[static_cast<size_t>(i * p.rank + j)];
        var += w * w * var_h[static_cast<size_t>(j)];
        magnitude += std::abs(w * h[j]);
        rounding += std::abs(w) * kRounding * magnitude_h[static_cast<size_t>(j)];
        if (h[j] <= 0) continue;  // an inactive unit passes no input error on
        for (int64_t k = 0; k < p.dim; ++k) {
          through[static_cast<size_t>(k)] += w * p.w1_f32[static_cast<size_t>(j * p.dim + k)];
        }
      }
      for (int64_t k = 0; k < p.dim; ++k) {
        var += through[static_cast<size_t>(k)] * through[static_cast<size_t>(k)] *
               var_x[static_cast<size_t>(k)];
      }
      bound[static_cast<size_t>(t * p.n_ff + i)] =
          kSigmas * std::sqrt(var) + kRounding * magnitude + rounding + 1e-30;
    }
  }
  return bound;
}

struct Case {
  DType dtype;
  int64_t dim, rank, n_ff, n;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << DTypeName(c.dtype) << " dim " << c.dim << " rank " << c.rank << " n_ff " << c.n_ff
      << " tokens " << c.n;
}

class PredictorKernelTest : public ::testing::TestWithParam<Case> {};

TEST_P(PredictorKernelTest, MatchesLibTorch) {
  const Case c = GetParam();
  cpu::SetThreads(2);
  const RandomPredictor p = MakePredictor(c.dim, c.rank, c.n_ff, c.dtype, 17);
  std::mt19937 g(5);
  // Real FFN inputs are ReLU-ed or normalized; both signs exercise the hidden ReLU.
  const std::vector<float> x = Random(g, static_cast<size_t>(c.n * c.dim), 1.0f);
  const TorchResult truth = TorchForward(p, x, c.n);
  const std::vector<double> bound = LogitErrorBound(p, x, truth, c.n);

  cpu::PredictorScratch scratch;
  const std::span<const float> logits = cpu::PredictorLogits(p.View(), x.data(), c.n, scratch);
  ASSERT_EQ(logits.size(), truth.logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    ASSERT_NEAR(logits[i], truth.logits[i], bound[i]) << "logit " << i;
  }

  // The predicted sets: every neuron clear of the threshold by more than its error bound is
  // decided as LibTorch decides it; the few inside the band may go either way.
  cpu::PredictedActive active;
  std::vector<uint8_t> masks(static_cast<size_t>(c.n * cpu::PredictorMaskBytes(c.n_ff)));
  cpu::PredictActive(p.View(), x.data(), c.n, scratch, active, masks.data());
  ASSERT_EQ(active.tokens(), c.n);
  int64_t decided = 0, active_total = 0;
  for (int64_t t = 0; t < c.n; ++t) {
    const std::span<const int32_t> ids = active.Token(t);
    EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
    std::vector<bool> in_set(static_cast<size_t>(c.n_ff), false);
    for (int32_t id : ids) in_set[static_cast<size_t>(id)] = true;
    active_total += static_cast<int64_t>(ids.size());
    const uint8_t* mask = masks.data() + t * cpu::PredictorMaskBytes(c.n_ff);
    for (int64_t i = 0; i < c.n_ff; ++i) {
      const bool bit = (mask[i >> 3] >> (i & 7)) & 1;
      ASSERT_EQ(bit, in_set[static_cast<size_t>(i)]) << "token " << t << " neuron " << i;
      const size_t k = static_cast<size_t>(t * c.n_ff + i);
      if (std::abs(truth.logits[k] - p.logit_threshold) <= bound[k]) continue;
      ++decided;
      EXPECT_EQ(in_set[static_cast<size_t>(i)], truth.logits[k] >= p.logit_threshold)
          << "token " << t << " neuron " << i << " LibTorch logit " << truth.logits[k];
    }
  }
  // Real work was checked: most decisions are clear, and both outcomes occur.
  EXPECT_GT(decided, c.n * c.n_ff * 9 / 10);
  EXPECT_GT(active_total, c.n * c.n_ff / 10);
  EXPECT_LT(active_total, c.n * c.n_ff * 9 / 10);
}

TEST_P(PredictorKernelTest, OneTokenAtATimeEqualsTheBatch) {
  const Case c = GetParam();
  cpu::SetThreads(2);
  const RandomPredictor p = MakePredictor(c.dim, c.rank, c.n_ff, c.dtype, 23);
  std::mt19937 g(9);
  const std::vector<float> x = Random(g, static_cast<size_t>(c.n * c.dim), 1.0f);
  // MatVec (one token) and MatMul (a batch) may sum in different orders: both lie within the
  // error bound of the exact value.
  const std::vector<double> bound = LogitErrorBound(p, x, TorchForward(p, x, c.n), c.n);
  cpu::PredictorScratch scratch;
  cpu::PredictedActive batch, one;
  cpu::PredictActive(p.View(), x.data(), c.n, scratch, batch);
  const std::vector<float> batch_logits(scratch.logits.begin(),
                                        scratch.logits.begin() + c.n * c.n_ff);
  for (int64_t t = 0; t < c.n; ++t) {
    cpu::PredictActive(p.View(), x.data() + t * c.dim, 1, scratch, one);
    ASSERT_EQ(one.tokens(), 1);
    int64_t differ = 0;
    for (int64_t i = 0; i < c.n_ff; ++i) {
      const size_t k = static_cast<size_t>(t * c.n_ff + i);
      const float a = scratch.logits[static_cast<size_t>(i)];
      ASSERT_NEAR(a, batch_logits[k], 2 * bound[k]) << "token " << t << " neuron " << i;
      differ += (a >= p.logit_threshold) != (batch_logits[k] >= p.logit_threshold);
    }
    const std::span<const int32_t> from_batch = batch.Token(t), alone = one.Token(0);
    EXPECT_EQ(std::abs(static_cast<int64_t>(from_batch.size()) -
                       static_cast<int64_t>(alone.size())) <= differ,
              true);
    if (differ == 0) {
      EXPECT_TRUE(std::equal(from_batch.begin(), from_batch.end(), alone.begin(), alone.end()));
    }
  }
}

TEST_P(PredictorKernelTest, MatchesTheScalarReference) {
  const Case c = GetParam();
  cpu::SetThreads(2);
  const RandomPredictor p = MakePredictor(c.dim, c.rank, c.n_ff, c.dtype, 31);
  std::mt19937 g(13);
  const std::vector<float> x = Random(g, static_cast<size_t>(c.n * c.dim), 1.0f);
  cpu::PredictorScratch fast, reference;
  const std::span<const float> a = cpu::PredictorLogits(p.View(), x.data(), c.n, fast);
  const std::span<const float> b =
      cpu::reference::PredictorLogits(p.View(), x.data(), c.n, reference);
  ASSERT_EQ(a.size(), b.size());
  // The fast kernels may quantize activations for q8_0 weights where the reference does not:
  // both lie within the error bound of the exact value.
  const std::vector<double> bound = LogitErrorBound(p, x, TorchForward(p, x, c.n), c.n);
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 2 * bound[i]) << i;
}

INSTANTIATE_TEST_SUITE_P(
    Dtypes, PredictorKernelTest,
    ::testing::Values(Case{DType::kF32, 64, 32, 192, 7},    // relu-llama-260k's shape
                      Case{DType::kF16, 64, 64, 192, 1},    // one token: MatVec
                      Case{DType::kF16, 256, 96, 688, 16},  // batch: MatMul
                      Case{DType::kQ8_0, 256, 64, 688, 1}, Case{DType::kQ8_0, 256, 64, 688, 5}),
    [](const ::testing::TestParamInfo<Case>& info) {
      return std::string(DTypeName(info.param.dtype)) + "_n" + std::to_string(info.param.n);
    });

TEST(PredictorKernel, SelectActiveIsTheThresholdTest) {
  const std::vector<float> logits = {-1.0f, 0.5f, 0.25f, 0.2499f, 3.0f, -0.0f, 0.25f, 0.0f, 9.0f};
  std::vector<int32_t> ids = {42};  // appended to, not replaced
  EXPECT_EQ(cpu::SelectActive(logits.data(), 9, 0.25f, ids), 5);
  EXPECT_EQ(ids, (std::vector<int32_t>{42, 1, 2, 4, 6, 8}));
  uint8_t mask[2] = {0xFF, 0xFF};
  cpu::SelectActiveMask(logits.data(), 9, 0.25f, mask);
  EXPECT_EQ(mask[0], 0b01010110);
  EXPECT_EQ(mask[1], 0b00000001);
}

}  // namespace
}  // namespace pinfer
