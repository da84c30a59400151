// The neuron-sparse hot FFN and the predictor MLP on the GPU against CPU references built from the
// scalar kernels. Skipped without a CUDA device.
#include "runtime/cuda/sparse_ffn.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "runtime/cpu/reference_kernels.h"
#include "runtime/cuda/predictor.h"
#include "tests/cuda/cuda_test_util.h"

namespace pinfer::cuda {
namespace {

using testing::CudaTest;
using testing::ExpectClose;
using testing::HostMatrix;
using testing::IsQuantized;
using testing::kWeightDTypes;
using testing::RandomMatrix;
using testing::RandomVector;

constexpr ActivationKind kActivations[] = {ActivationKind::kSilu,       ActivationKind::kGelu,
                                           ActivationKind::kRelu,       ActivationKind::kRelu2,
                                           ActivationKind::kDRelu,      ActivationKind::kFatRelu,
                                           ActivationKind::kShiftedRelu};

struct FfnCase {
  int64_t n_ff;
  int64_t n_hot;
  int64_t dim;
  double density;  // of the predicted-active mask over all neurons
};

class SparseFfnTest : public CudaTest {
 protected:
  // Runs HotSparseFfn on random hot rows and compares y and the computed count with the reference:
  // gate/up products of the hot rows, the activation, zero for inactive slots, then the
  // transposed accumulation of the down rows.
  void Check(DType dtype, const FfnCase& c, ActivationKind act, bool with_mask, uint32_t seed) {
    const std::string what =
        absl::StrFormat("HotSparseFfn %s n_ff %d hot %d dim %d act %d%s", DTypeName(dtype), c.n_ff,
                        c.n_hot, c.dim, static_cast<int>(act), with_mask ? "" : " (no mask)");
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.dim));
    const HostMatrix gate = RandomMatrix(dtype, c.n_hot, c.dim, seed, scale);
    const HostMatrix up = RandomMatrix(dtype, c.n_hot, c.dim, seed + 1, scale);
    const HostMatrix down = RandomMatrix(dtype, c.n_hot, c.dim, seed + 2);
    const std::vector<float> x = RandomVector(static_cast<size_t>(c.dim), seed + 3);
    const std::vector<float> y0 = RandomVector(static_cast<size_t>(c.dim), seed + 4);

    // Hot neurons: a random subset of the layer, in no particular order.
    std::vector<int32_t> ids(static_cast<size_t>(c.n_ff));
    std::iota(ids.begin(), ids.end(), 0);
    std::mt19937 rng(seed + 5);
    std::shuffle(ids.begin(), ids.end(), rng);
    ids.resize(static_cast<size_t>(c.n_hot));
    std::vector<uint8_t> mask(static_cast<size_t>(c.n_ff));
    std::bernoulli_distribution active(c.density);
    for (uint8_t& m : mask) m = active(rng) ? 1 : 0;

    std::vector<float> g(static_cast<size_t>(c.n_hot)), u(g.size()), a(g.size());
    cpu::reference::MatVec(gate.View(), x.data(), g.data());
    cpu::reference::MatVec(up.View(), x.data(), u.data());
    cpu::reference::FfnCombine(act, 0.25f, g.data(), u.data(), c.n_hot, a.data());
    int32_t want_count = 0;
    for (int64_t j = 0; j < c.n_hot; ++j) {
      if (with_mask && mask[ids[j]] == 0) {
        a[j] = 0.0f;
      } else {
        ++want_count;
      }
    }
    std::vector<float> want = y0;
    cpu::reference::MatVecTransposedAccumulate(down.View(), a.data(), want.data());

    DeviceBuffer gate_storage, up_storage, down_storage;
    HotFfnWeights weights;
    weights.gate = ToDevice(gate, gate_storage);
    weights.up = ToDevice(up, up_storage);
    weights.down = ToDevice(down, down_storage);
    DeviceBuffer dids = ToDevice(ids);
    weights.neuron_ids = dids.As<int32_t>();
    DeviceBuffer dmask = ToDevice(mask);
    DeviceBuffer dx = ToDevice(x);
    DeviceBuffer dy = ToDevice(y0);
    DeviceBuffer dcount = Allocate(sizeof(int32_t));
    PINFER_ASSERT_OK(HotSparseFfn(stream(), weights, act, 0.25f, dx.As<float>(),
                                  with_mask ? dmask.As<uint8_t>() : nullptr, dy.As<float>(),
                                  dcount.As<int32_t>()));
    ExpectClose(ToHost<float>(dy.data(), want.size()), want, 1e-4, what);
    EXPECT_EQ(ToHost<int32_t>(dcount.data(), 1)[0], want_count) << what;
  }
};

// Every dtype and activation at a small odd shape (fatrelu's jump at T makes it the one to keep
// away from large shapes, where some gate value lands within rounding of T).
TEST_F(SparseFfnTest, EveryDTypeAndActivationAtOddSizes) {
  uint32_t seed = 1000;
  for (DType dtype : kWeightDTypes) {
    const FfnCase c{173, 61, IsQuantized(dtype) ? 96 : 67, 0.3};
    for (ActivationKind act : kActivations) Check(dtype, c, act, /*with_mask=*/true, seed += 10);
    Check(dtype, c, ActivationKind::kRelu, /*with_mask=*/false, seed += 10);
  }
}

// Llama-7B layer: 11008 neurons, 4096 of them hot, 10% predicted active.
TEST_F(SparseFfnTest, SevenBillionShapeAtTenPercentDensity) {
  uint32_t seed = 2000;
  for (DType dtype : kWeightDTypes) {
    Check(dtype, {11008, 4096, 4096, 0.1}, ActivationKind::kSilu, true, seed += 10);
    Check(dtype, {11008, 4096, 4096, 0.1}, ActivationKind::kRelu, true, seed += 10);
  }
}

TEST_F(SparseFfnTest, EmptyHotSetAndNothingActive) {
  DeviceBuffer dx = ToDevice(RandomVector(64, 1));
  const std::vector<float> y0 = RandomVector(64, 2);
  DeviceBuffer dy = ToDevice(y0);
  DeviceBuffer dcount = ToDevice(std::vector<int32_t>{-1});
  HotFfnWeights empty;
  empty.gate = MakeDeviceMatrix(DType::kF16, 0, 64, nullptr);
  empty.up = empty.gate;
  empty.down = empty.gate;
  PINFER_ASSERT_OK(HotSparseFfn(stream(), empty, ActivationKind::kRelu, 0.0f, dx.As<float>(),
                                nullptr, dy.As<float>(), dcount.As<int32_t>()));
  EXPECT_EQ(ToHost<int32_t>(dcount.data(), 1)[0], 0);
  EXPECT_EQ(ToHost<float>(dy.data(), 64), y0);

  Check(DType::kF16, {500, 100, 64, 0.0}, ActivationKind::kRelu, true, 3000);
}

TEST_F(SparseFfnTest, RejectsMismatchedMatrices) {
  DeviceBuffer storage = Allocate(1 << 16);
  HotFfnWeights w;
  w.gate = MakeDeviceMatrix(DType::kF16, 10, 64, storage.data());
  w.up = MakeDeviceMatrix(DType::kQ8_0, 10, 64, storage.data());
  w.down = w.gate;
  w.neuron_ids = storage.As<int32_t>();
  const absl::Status s = HotSparseFfn(stream(), w, ActivationKind::kRelu, 0.0f, storage.As<float>(),
                                      nullptr, storage.As<float>());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
}

class PredictorTest : public CudaTest {
 protected:
  void Check(DType dtype, PredictorLayout layout, int64_t dim, int64_t rank, int64_t n_ff,
             bool biases, float threshold, uint32_t seed) {
    const std::string what =
        absl::StrFormat("Predictor %s %s dim %d rank %d n_ff %d threshold %g", DTypeName(dtype),
                        layout == PredictorLayout::kOutputMajor ? "output-major" : "input-major",
                        dim, rank, n_ff, threshold);
    const bool output_major = layout == PredictorLayout::kOutputMajor;
    const HostMatrix w1 = output_major
                              ? RandomMatrix(dtype, rank, dim, seed, 1.0f / std::sqrt(float(dim)))
                              : RandomMatrix(dtype, dim, rank, seed, 1.0f / std::sqrt(float(dim)));
    const HostMatrix w2 =
        output_major ? RandomMatrix(dtype, n_ff, rank, seed + 1, 2.0f / std::sqrt(float(rank)))
                     : RandomMatrix(dtype, rank, n_ff, seed + 1, 2.0f / std::sqrt(float(rank)));
    const std::vector<float> b1 = RandomVector(static_cast<size_t>(rank), seed + 2, 0.1f);
    const std::vector<float> b2 = RandomVector(static_cast<size_t>(n_ff), seed + 3);
    const std::vector<float> x = RandomVector(static_cast<size_t>(dim), seed + 4);

    // Reference probabilities.
    std::vector<float> hidden(static_cast<size_t>(rank), 0.0f), logits(n_ff, 0.0f);
    if (output_major) {
      cpu::reference::MatVec(w1.View(), x.data(), hidden.data());
    } else {
      cpu::reference::MatVecTransposedAccumulate(w1.View(), x.data(), hidden.data());
    }
    for (int64_t i = 0; i < rank; ++i) hidden[i] = std::max(hidden[i] + (biases ? b1[i] : 0), 0.f);
    if (output_major) {
      cpu::reference::MatVec(w2.View(), hidden.data(), logits.data());
    } else {
      cpu::reference::MatVecTransposedAccumulate(w2.View(), hidden.data(), logits.data());
    }
    std::vector<double> probability(static_cast<size_t>(n_ff));
    for (int64_t i = 0; i < n_ff; ++i) {
      probability[i] =
          1.0 / (1.0 + std::exp(-(static_cast<double>(logits[i]) + (biases ? b2[i] : 0))));
    }

    DeviceBuffer w1_storage, w2_storage;
    DevicePredictor weights;
    weights.w1 = ToDevice(w1, w1_storage);
    weights.w2 = ToDevice(w2, w2_storage);
    DeviceBuffer db1 = ToDevice(b1);
    DeviceBuffer db2 = ToDevice(b2);
    if (biases) {
      weights.b1 = db1.As<float>();
      weights.b2 = db2.As<float>();
    }
    weights.layout = layout;
    DeviceBuffer dx = ToDevice(x);
    DeviceBuffer dids = Allocate(static_cast<size_t>(n_ff) * sizeof(int32_t));
    DeviceBuffer dcount = Allocate(sizeof(int32_t));
    DeviceBuffer dmask = Allocate(static_cast<size_t>(n_ff));
    PINFER_ASSERT_OK(PredictActiveNeurons(stream(), weights, dx.As<float>(), threshold,
                                          dids.As<int32_t>(), dcount.As<int32_t>(),
                                          dmask.As<uint8_t>()));
    const int32_t count = ToHost<int32_t>(dcount.data(), 1)[0];
    ASSERT_GE(count, 0) << what;
    ASSERT_LE(count, n_ff) << what;
    const std::vector<int32_t> ids = ToHost<int32_t>(dids.data(), static_cast<size_t>(count));
    const std::vector<uint8_t> mask = ToHost<uint8_t>(dmask.data(), static_cast<size_t>(n_ff));

    EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end())) << what;
    std::vector<uint8_t> listed(static_cast<size_t>(n_ff), 0);
    for (int32_t id : ids) {
      ASSERT_TRUE(id >= 0 && id < n_ff) << what;
      ASSERT_EQ(listed[id], 0) << what << ": neuron " << id << " listed twice";
      listed[id] = 1;
    }
    EXPECT_EQ(listed, mask) << what << ": the mask and the list disagree";
    int64_t decided = 0;
    for (int64_t i = 0; i < n_ff; ++i) {
      // Neurons within rounding of the threshold may go either way.
      if (std::fabs(probability[i] - threshold) < 1e-4) continue;
      ++decided;
      EXPECT_EQ(listed[i] != 0, probability[i] >= threshold)
          << what << ": neuron " << i << " probability " << probability[i];
    }
    EXPECT_GT(decided, n_ff * 9 / 10) << what;
    if (threshold > 0.0f && threshold < 1.0f) {
      EXPECT_GT(count, 0) << what << ": the case should have active neurons";
      EXPECT_LT(count, n_ff) << what << ": the case should have inactive neurons";
    }
  }
};

TEST_F(PredictorTest, MatchesReference) {
  uint32_t seed = 4000;
  for (PredictorLayout layout : {PredictorLayout::kOutputMajor, PredictorLayout::kInputMajor}) {
    for (DType dtype : {DType::kF16, DType::kF32, DType::kQ8_0}) {
      Check(dtype, layout, 96, 32, 160, true, 0.5f, seed += 10);
      Check(dtype, layout, 4096, 1024, 11008, true, 0.5f, seed += 10);  // 7B layer
    }
    Check(DType::kF16, layout, 4096, 256, 14336, false, 0.3f, seed += 10);
  }
}

TEST_F(PredictorTest, ThresholdsAtTheEnds) {
  Check(DType::kF16, PredictorLayout::kOutputMajor, 64, 16, 100, true, 0.0f, 5000);  // all active
  Check(DType::kF16, PredictorLayout::kOutputMajor, 64, 16, 100, true, 1.0f, 5001);
}

TEST_F(PredictorTest, RejectsBadArguments) {
  DeviceBuffer storage = Allocate(1 << 16);
  DevicePredictor w;
  w.w1 = MakeDeviceMatrix(DType::kF16, 16, 64, storage.data());
  w.w2 = MakeDeviceMatrix(DType::kF16, 100, 15, storage.data());  // rank 15 != 16
  int32_t* ids = storage.As<int32_t>();
  EXPECT_EQ(PredictActiveNeurons(stream(), w, storage.As<float>(), 0.5f, ids, ids, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  w.w2 = MakeDeviceMatrix(DType::kF16, 100, 16, storage.data());
  EXPECT_EQ(PredictActiveNeurons(stream(), w, storage.As<float>(), 1.5f, ids, ids, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace pinfer::cuda
