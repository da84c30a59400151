// Mat-vec, mat-mat, the transposed (down-projection) products and row decoding on the GPU against
// the CPU scalar references, for every weight dtype, at odd sizes (remainder and scalar paths)
// and at Llama-7B sizes. Skipped without a CUDA device.
#include <algorithm>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "runtime/cpu/reference_kernels.h"
#include "runtime/cuda/tuning.h"
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

struct Shape {
  int64_t rows;
  int64_t cols;
};

// Odd sizes exercise the partial tiles and, for floating dtypes with an odd column count, the
// element-by-element path; 4096 x 4096 is a 7B attention projection.
std::vector<Shape> MatVecShapes(DType dtype) {
  if (IsQuantized(dtype)) return {{37, 96}, {5, 32}, {4096, 4096}};
  return {{37, 67}, {33, 96}, {1, 5}, {4096, 4096}};
}

// The down projection: [n_ff, dim] rows.
std::vector<Shape> TransposedShapes(DType dtype) {
  if (IsQuantized(dtype)) return {{37, 96}, {300, 1056}, {11008, 4096}};
  return {{37, 67}, {300, 1000}, {11008, 4096}};
}

std::string Label(std::string_view op, DType dtype, int64_t rows, int64_t cols, int64_t n = 1) {
  return absl::StrFormat("%s %s [%d, %d] n=%d", op, DTypeName(dtype), rows, cols, n);
}

// Restores the tuning knobs a test changes.
class TuningGuard {
 public:
  TuningGuard() : saved_(GetKernelTuning()) {}
  ~TuningGuard() { MutableKernelTuning() = saved_; }

 private:
  KernelTuning saved_;
};

class MatrixProductTest : public CudaTest {};

TEST_F(MatrixProductTest, MatVecMatchesReference) {
  uint32_t seed = 1;
  for (DType dtype : kWeightDTypes) {
    for (const Shape& shape : MatVecShapes(dtype)) {
      const HostMatrix w = RandomMatrix(dtype, shape.rows, shape.cols, ++seed);
      const std::vector<float> x = RandomVector(static_cast<size_t>(shape.cols), ++seed);
      std::vector<float> want(static_cast<size_t>(shape.rows));
      cpu::reference::MatVec(w.View(), x.data(), want.data());

      DeviceBuffer w_storage;
      const DeviceMatrix dw = ToDevice(w, w_storage);
      DeviceBuffer dx = ToDevice(x);
      DeviceBuffer dy = Allocate(want.size() * sizeof(float));
      PINFER_ASSERT_OK(MatVec(stream(), dw, dx.As<float>(), dy.As<float>()));
      ExpectClose(ToHost<float>(dy.data(), want.size()), want, 1e-4,
                  Label("MatVec", dtype, shape.rows, shape.cols));
    }
  }
}

// x at an address that is not 16-byte aligned: floating weights fall back to the scalar path.
TEST_F(MatrixProductTest, MatVecWithMisalignedActivations) {
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    const HostMatrix w = RandomMatrix(dtype, 40, 128, 7);
    std::vector<float> padded = RandomVector(129, 8);
    const std::vector<float> x(padded.begin() + 1, padded.end());
    std::vector<float> want(40);
    cpu::reference::MatVec(w.View(), x.data(), want.data());

    DeviceBuffer w_storage;
    const DeviceMatrix dw = ToDevice(w, w_storage);
    DeviceBuffer dx = ToDevice(padded);
    DeviceBuffer dy = Allocate(want.size() * sizeof(float));
    PINFER_ASSERT_OK(MatVec(stream(), dw, dx.As<float>() + 1, dy.As<float>()));
    ExpectClose(ToHost<float>(dy.data(), want.size()), want, 1e-4,
                Label("MatVec misaligned x", dtype, 40, 128));
  }
  // Quantized weights need aligned activations and say so.
  const HostMatrix q = RandomMatrix(DType::kQ4_0, 4, 64, 9);
  DeviceBuffer q_storage;
  const DeviceMatrix dq = ToDevice(q, q_storage);
  DeviceBuffer dx = Allocate(65 * sizeof(float));
  DeviceBuffer dy = Allocate(4 * sizeof(float));
  const absl::Status s = MatVec(stream(), dq, dx.As<float>() + 1, dy.As<float>());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
}

// Relative tolerance of the GEMM path: the activations are rounded to f16 (bf16 for bf16 weights)
// and quantized weights are dequantized to f16.
double GemmTolerance(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return 1e-4;
    case DType::kBF16:
      return 2e-2;
    default:
      return 5e-3;
  }
}

TEST_F(MatrixProductTest, MatMulMatchesReference) {
  TuningGuard guard;
  uint32_t seed = 100;
  struct Case {
    Shape shape;
    int64_t n;
  };
  for (DType dtype : kWeightDTypes) {
    const int64_t cols = IsQuantized(dtype) ? 96 : 67;
    const Case cases[] = {{{37, cols}, 3}, {{37, cols}, 9}, {{1024, 4096}, 16}};
    for (const Case& c : cases) {
      const HostMatrix w = RandomMatrix(dtype, c.shape.rows, c.shape.cols, ++seed);
      const std::vector<float> x = RandomVector(static_cast<size_t>(c.n * c.shape.cols), ++seed);
      std::vector<float> want(static_cast<size_t>(c.n * c.shape.rows));
      cpu::reference::MatMul(w.View(), x.data(), c.n, want.data());

      DeviceBuffer w_storage;
      const DeviceMatrix dw = ToDevice(w, w_storage);
      DeviceBuffer dx = ToDevice(x);
      DeviceBuffer dy = Allocate(want.size() * sizeof(float));
      PINFER_ASSERT_OK(MatMul(stream(), dw, dx.As<float>(), c.n, dy.As<float>()));
      const bool gemm = c.n > GetKernelTuning().max_matvec_batch;
      ExpectClose(ToHost<float>(dy.data(), want.size()), want, gemm ? GemmTolerance(dtype) : 1e-4,
                  Label("MatMul", dtype, c.shape.rows, c.shape.cols, c.n));
    }
  }
}

// Quantized weights go through the GEMM in f16 tiles: force several (and a partial last one).
TEST_F(MatrixProductTest, QuantizedGemmTiles) {
  TuningGuard guard;
  MutableKernelTuning().dequant_tile_bytes = 10 * 256 * 2;  // 10 rows of 256 columns
  for (DType dtype : {DType::kQ8_0, DType::kQ4_0}) {
    const HostMatrix w = RandomMatrix(dtype, 37, 256, 200);
    const int64_t n = 12;
    const std::vector<float> x = RandomVector(static_cast<size_t>(n * 256), 201);
    std::vector<float> want(static_cast<size_t>(n * 37));
    cpu::reference::MatMul(w.View(), x.data(), n, want.data());
    DeviceBuffer w_storage;
    const DeviceMatrix dw = ToDevice(w, w_storage);
    DeviceBuffer dx = ToDevice(x);
    DeviceBuffer dy = Allocate(want.size() * sizeof(float));
    PINFER_ASSERT_OK(MatMul(stream(), dw, dx.As<float>(), n, dy.As<float>()));
    ExpectClose(ToHost<float>(dy.data(), want.size()), want, GemmTolerance(dtype),
                Label("MatMul tiled", dtype, 37, 256, n));

    // The transposed product tiles its reduction; every tile accumulates.
    const std::vector<float> a = RandomVector(static_cast<size_t>(n * 37), 202);
    const std::vector<float> y0 = RandomVector(static_cast<size_t>(n * 256), 203);
    std::vector<float> want_t = y0;
    cpu::reference::MatMulTransposedAccumulate(w.View(), a.data(), n, want_t.data());
    DeviceBuffer da = ToDevice(a);
    DeviceBuffer dyt = ToDevice(y0);
    PINFER_ASSERT_OK(MatMulTransposedAccumulate(stream(), dw, da.As<float>(), n, dyt.As<float>()));
    ExpectClose(ToHost<float>(dyt.data(), want_t.size()), want_t, GemmTolerance(dtype),
                Label("MatMulTransposedAccumulate tiled", dtype, 37, 256, n));
  }
}

// a with a third of exact zeros, as a ReLU FFN produces (those rows are skipped).
std::vector<float> SparseActivations(size_t n, uint32_t seed) {
  std::vector<float> a = RandomVector(n, seed);
  for (size_t i = 0; i < n; i += 3) a[i] = 0.0f;
  return a;
}

TEST_F(MatrixProductTest, MatVecTransposedAccumulateMatchesReference) {
  uint32_t seed = 300;
  for (DType dtype : kWeightDTypes) {
    for (const Shape& shape : TransposedShapes(dtype)) {
      const HostMatrix w = RandomMatrix(dtype, shape.rows, shape.cols, ++seed);
      const std::vector<float> a = SparseActivations(static_cast<size_t>(shape.rows), ++seed);
      const std::vector<float> y0 = RandomVector(static_cast<size_t>(shape.cols), ++seed);
      std::vector<float> want = y0;
      cpu::reference::MatVecTransposedAccumulate(w.View(), a.data(), want.data());

      DeviceBuffer w_storage;
      const DeviceMatrix dw = ToDevice(w, w_storage);
      DeviceBuffer da = ToDevice(a);
      DeviceBuffer dy = ToDevice(y0);
      PINFER_ASSERT_OK(MatVecTransposedAccumulate(stream(), dw, da.As<float>(), dy.As<float>()));
      ExpectClose(ToHost<float>(dy.data(), want.size()), want, 1e-4,
                  Label("MatVecTransposedAccumulate", dtype, shape.rows, shape.cols));
    }
  }
}

TEST_F(MatrixProductTest, MatMulTransposedAccumulateMatchesReference) {
  uint32_t seed = 400;
  for (DType dtype : kWeightDTypes) {
    const int64_t cols = IsQuantized(dtype) ? 96 : 67;
    const struct {
      Shape shape;
      int64_t n;
    } cases[] = {{{37, cols}, 2}, {{37, cols}, 9}, {{1024, 4096}, 16}};
    for (const auto& c : cases) {
      const HostMatrix w = RandomMatrix(dtype, c.shape.rows, c.shape.cols, ++seed);
      const std::vector<float> a =
          SparseActivations(static_cast<size_t>(c.n * c.shape.rows), ++seed);
      const std::vector<float> y0 = RandomVector(static_cast<size_t>(c.n * c.shape.cols), ++seed);
      std::vector<float> want = y0;
      cpu::reference::MatMulTransposedAccumulate(w.View(), a.data(), c.n, want.data());

      DeviceBuffer w_storage;
      const DeviceMatrix dw = ToDevice(w, w_storage);
      DeviceBuffer da = ToDevice(a);
      DeviceBuffer dy = ToDevice(y0);
      PINFER_ASSERT_OK(
          MatMulTransposedAccumulate(stream(), dw, da.As<float>(), c.n, dy.As<float>()));
      const bool gemm = c.n > GetKernelTuning().max_matvec_batch;
      ExpectClose(ToHost<float>(dy.data(), want.size()), want, gemm ? GemmTolerance(dtype) : 1e-4,
                  Label("MatMulTransposedAccumulate", dtype, c.shape.rows, c.shape.cols, c.n));
    }
  }
}

// The sparse down projection over a device-side list whose length is only known on the GPU.
TEST_F(MatrixProductTest, SparseTransposedAccumulateMatchesReference) {
  uint32_t seed = 500;
  for (DType dtype : kWeightDTypes) {
    for (const Shape& shape : TransposedShapes(dtype)) {
      const HostMatrix w = RandomMatrix(dtype, shape.rows, shape.cols, ++seed);
      // ~10% of the rows, in a shuffled order.
      std::vector<int32_t> rows(static_cast<size_t>(shape.rows));
      std::iota(rows.begin(), rows.end(), 0);
      std::shuffle(rows.begin(), rows.end(), std::mt19937(++seed));
      rows.resize(std::max<size_t>(1, rows.size() / 10));
      const std::vector<float> a = RandomVector(rows.size(), ++seed);
      const std::vector<float> y0 = RandomVector(static_cast<size_t>(shape.cols), ++seed);

      std::vector<float> dense_a(static_cast<size_t>(shape.rows), 0.0f);
      for (size_t k = 0; k < rows.size(); ++k) dense_a[rows[k]] = a[k];
      std::vector<float> want = y0;
      cpu::reference::MatVecTransposedAccumulate(w.View(), dense_a.data(), want.data());

      DeviceBuffer w_storage;
      const DeviceMatrix dw = ToDevice(w, w_storage);
      // Capacity for every row, as a predictor's output buffer has; only `count` are used.
      std::vector<int32_t> rows_padded = rows;
      rows_padded.resize(static_cast<size_t>(shape.rows), -1);
      std::vector<float> a_padded = a;
      a_padded.resize(static_cast<size_t>(shape.rows), 1e30f);  // must never be read
      DeviceBuffer drows = ToDevice(rows_padded);
      DeviceBuffer da = ToDevice(a_padded);
      DeviceBuffer dcount = ToDevice(std::vector<int32_t>{static_cast<int32_t>(rows.size())});
      DeviceBuffer dy = ToDevice(y0);
      PINFER_ASSERT_OK(SparseTransposedAccumulate(stream(), dw, drows.As<int32_t>(),
                                                  dcount.As<int32_t>(), shape.rows, da.As<float>(),
                                                  dy.As<float>()));
      ExpectClose(ToHost<float>(dy.data(), want.size()), want, 1e-4,
                  Label("SparseTransposedAccumulate", dtype, shape.rows, shape.cols));
    }
  }
}

TEST_F(MatrixProductTest, DecodeAndGatherRowsAreExact) {
  uint32_t seed = 600;
  for (DType dtype : kWeightDTypes) {
    const int64_t cols = IsQuantized(dtype) ? 96 : 67;
    const HostMatrix w = RandomMatrix(dtype, 20, cols, ++seed);
    DeviceBuffer w_storage;
    const DeviceMatrix dw = ToDevice(w, w_storage);

    std::vector<float> want(static_cast<size_t>(5 * cols));
    cpu::reference::DecodeRows(w.View(), 3, 5, want.data());
    DeviceBuffer out = Allocate(want.size() * sizeof(float));
    PINFER_ASSERT_OK(DecodeRows(stream(), dw, 3, 5, out.As<float>()));
    EXPECT_EQ(ToHost<float>(out.data(), want.size()), want) << DTypeName(dtype);

    const std::vector<int32_t> ids = {19, 0, 7, 7};
    std::vector<float> gathered(ids.size() * static_cast<size_t>(cols));
    for (size_t i = 0; i < ids.size(); ++i) {
      cpu::reference::DecodeRows(w.View(), ids[i], 1, gathered.data() + i * cols);
    }
    DeviceBuffer dids = ToDevice(ids);
    DeviceBuffer gout = Allocate(gathered.size() * sizeof(float));
    PINFER_ASSERT_OK(GatherRows(stream(), dw, dids.As<int32_t>(), 4, gout.As<float>()));
    EXPECT_EQ(ToHost<float>(gout.data(), gathered.size()), gathered) << DTypeName(dtype);

    EXPECT_EQ(DecodeRows(stream(), dw, 18, 5, out.As<float>()).code(),
              absl::StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace pinfer::cuda
