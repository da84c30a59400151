// Matrix-matrix products (prefill, n > 1 tokens).
//
// Small batches (n <= KernelTuning::max_matvec_batch) run the mat-vec kernels once per token:
// they stay memory-bound, and the custom kernels read quantized weights directly. Larger batches
// are compute-bound and go to cuBLAS on tensor cores (cublasGemmEx, f32 accumulation):
//   - f32 weights: an exact f32 GEMM (tests and small models);
//   - f16 / bf16 weights: used as they are, the activations rounded to the same type;
//   - q8_0 / q4_0 weights: dequantized to f16, a tile of rows at a time, then the f16 GEMM. The
//     extra pass costs ~2 bytes per weight, written and read once per call, which a prefill of n
//     tokens amortises over 2·n flops per weight; a fused quantized GEMM (llama.cpp's MMQ) would
//     save that pass and the scratch tile, at the price of a much larger kernel to write and
//     compile. cuBLAS keeps the first version small and at tensor-core speed.
// cuBLAS is column-major: a row-major [r, c] matrix is a column-major [c, r] one, so
//   Y[n, rows] = X[n, cols] · W^T   is   Y^T (rows x n) = op_T(W as cols x rows) · X^T (cols x n)
//   Y[n, cols] += A[n, rows] · W    is   Y^T (cols x n) += (W as cols x rows) · A^T (rows x n).
#include <algorithm>
#include <limits>

#include "absl/strings/str_format.h"
#include "runtime/cuda/checks.h"
#include "runtime/cuda/cuda_status.h"
#include "runtime/cuda/kernels.h"
#include "runtime/cuda/launch.h"
#include "runtime/cuda/stream_internal.h"
#include "runtime/cuda/tuning.h"

namespace pinfer::cuda {

using internal::CheckActivationAlignment;
using internal::CheckNotNull;
using internal::CheckWeights;
using internal::CublasStatus;
using internal::LaunchStatus;
using internal::NativeStream;
using internal::WeightsArg;
using internal::WeightType;

namespace {

absl::Status CheckGemmSize(int64_t value, std::string_view op) {
  if (value <= std::numeric_limits<int>::max()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrFormat("%s: dimension %d exceeds cuBLAS's 32-bit sizes", op, value));
}

// One column-major GEMM C = alpha op(A) B + beta C with f32 output and f32 accumulation.
struct Gemm {
  cublasOperation_t op_a;
  int64_t m, n, k;
  const void* a;
  cudaDataType_t a_type;
  int64_t lda;
  const void* b;
  cudaDataType_t b_type;
  int64_t ldb;
  float beta;
  float* c;
  int64_t ldc;
};

absl::Status RunGemm(Stream& stream, const Gemm& g, std::string_view op) {
  absl::StatusOr<cublasHandle_t> handle = internal::Cublas(stream);
  if (!handle.ok()) return handle.status();
  const float alpha = 1.0f;
  // f32 inputs keep full f32 math (no TF32) so that f32 weights give f32-exact products.
  const cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  return CublasStatus(
      cublasGemmEx(*handle, g.op_a, CUBLAS_OP_N, static_cast<int>(g.m), static_cast<int>(g.n),
                   static_cast<int>(g.k), &alpha, g.a, g.a_type, static_cast<int>(g.lda), g.b,
                   g.b_type, static_cast<int>(g.ldb), &g.beta, g.c, CUDA_R_32F,
                   static_cast<int>(g.ldc), compute, CUBLAS_GEMM_DEFAULT),
      absl::StrFormat("cublasGemmEx (%s)", op));
}

bool IsQuantized(WeightType type) { return type == WeightType::kQ8_0 || type == WeightType::kQ4_0; }

// The cuBLAS type the activations are converted to for weights of `type` (f32 stays f32).
cudaDataType_t GemmType(WeightType type) {
  switch (type) {
    case WeightType::kF32:
      return CUDA_R_32F;
    case WeightType::kBF16:
      return CUDA_R_16BF;
    default:
      return CUDA_R_16F;  // f16, and the f16 dequantized tiles of q8_0 / q4_0
  }
}

// The activations in the GEMM's input type: x itself for f32, else a converted copy in scratch.
absl::StatusOr<const void*> GemmActivations(Stream& stream, internal::ScratchArena::Scope& scratch,
                                            WeightType type, const float* x, int64_t count,
                                            std::string_view op) {
  if (type == WeightType::kF32) return static_cast<const void*>(x);
  absl::StatusOr<uint16_t*> converted = scratch.Allocate<uint16_t>(static_cast<size_t>(count));
  if (!converted.ok()) return converted.status();
  if (absl::Status s = LaunchStatus(internal::LaunchConvertF32(x, count, type == WeightType::kBF16,
                                                               *converted, NativeStream(stream)),
                                    op);
      !s.ok()) {
    return s;
  }
  return static_cast<const void*>(*converted);
}

// Rows of a quantized W per dequantized f16 tile.
int64_t TileRows(const WeightsArg& w) {
  const size_t row_f16_bytes = static_cast<size_t>(w.cols) * 2;
  const int64_t rows = static_cast<int64_t>(GetKernelTuning().dequant_tile_bytes / row_f16_bytes);
  return std::clamp<int64_t>(rows, 1, std::max<int64_t>(w.rows, 1));
}

}  // namespace

absl::Status MatMul(Stream& stream, const DeviceMatrix& w, const float* x, int64_t n, float* y) {
  constexpr std::string_view kOp = "MatMul";
  absl::StatusOr<WeightsArg> arg = CheckWeights(w, kOp);
  if (!arg.ok()) return arg.status();
  if (absl::Status s = internal::CheckCount(n, kOp, "batch"); !s.ok()) return s;
  if (n == 0 || w.rows == 0) return absl::OkStatus();
  if (absl::Status s = CheckNotNull(x, kOp, "x"); !s.ok()) return s;
  if (absl::Status s = CheckNotNull(y, kOp, "y"); !s.ok()) return s;

  if (n <= GetKernelTuning().max_matvec_batch) {
    for (int64_t t = 0; t < n; ++t) {
      if (absl::Status s = MatVec(stream, w, x + t * w.cols, y + t * w.rows); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  if (absl::Status s = CheckActivationAlignment(*arg, x, kOp); !s.ok()) return s;
  for (int64_t v : {w.rows, w.cols, n}) {
    if (absl::Status s = CheckGemmSize(v, kOp); !s.ok()) return s;
  }

  internal::ScratchArena::Scope scratch(internal::Scratch(stream));
  absl::StatusOr<const void*> xg = GemmActivations(stream, scratch, arg->type, x, n * w.cols, kOp);
  if (!xg.ok()) return xg.status();
  const cudaDataType_t type = GemmType(arg->type);

  if (!IsQuantized(arg->type)) {
    return RunGemm(
        stream,
        {CUBLAS_OP_T, w.rows, n, w.cols, w.data, type, w.cols, *xg, type, w.cols, 0.0f, y, w.rows},
        kOp);
  }
  const int64_t tile_rows = TileRows(*arg);
  absl::StatusOr<uint16_t*> tile =
      scratch.Allocate<uint16_t>(static_cast<size_t>(tile_rows * w.cols));
  if (!tile.ok()) return tile.status();
  for (int64_t r0 = 0; r0 < w.rows; r0 += tile_rows) {
    const int64_t rows = std::min(tile_rows, w.rows - r0);
    if (absl::Status s = LaunchStatus(
            internal::LaunchDequantizeToF16(*arg, r0, rows, *tile, NativeStream(stream)), kOp);
        !s.ok()) {
      return s;
    }
    // Output rows [r0, r0 + rows) of every token: column-major C at offset r0, ldc = w.rows.
    if (absl::Status s = RunGemm(stream,
                                 {CUBLAS_OP_T, rows, n, w.cols, *tile, CUDA_R_16F, w.cols, *xg,
                                  CUDA_R_16F, w.cols, 0.0f, y + r0, w.rows},
                                 kOp);
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status MatMulTransposedAccumulate(Stream& stream, const DeviceMatrix& w, const float* a,
                                        int64_t n, float* y) {
  constexpr std::string_view kOp = "MatMulTransposedAccumulate";
  absl::StatusOr<WeightsArg> arg = CheckWeights(w, kOp);
  if (!arg.ok()) return arg.status();
  if (absl::Status s = internal::CheckCount(n, kOp, "batch"); !s.ok()) return s;
  if (n == 0 || w.rows == 0) return absl::OkStatus();
  if (absl::Status s = CheckNotNull(a, kOp, "a"); !s.ok()) return s;
  if (absl::Status s = CheckNotNull(y, kOp, "y"); !s.ok()) return s;

  if (n <= GetKernelTuning().max_matvec_batch) {
    for (int64_t t = 0; t < n; ++t) {
      if (absl::Status s = MatVecTransposedAccumulate(stream, w, a + t * w.rows, y + t * w.cols);
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }
  for (int64_t v : {w.rows, w.cols, n}) {
    if (absl::Status s = CheckGemmSize(v, kOp); !s.ok()) return s;
  }

  internal::ScratchArena::Scope scratch(internal::Scratch(stream));
  absl::StatusOr<const void*> ag = GemmActivations(stream, scratch, arg->type, a, n * w.rows, kOp);
  if (!ag.ok()) return ag.status();
  const cudaDataType_t type = GemmType(arg->type);
  const size_t element_bytes = type == CUDA_R_32F ? 4 : 2;

  if (!IsQuantized(arg->type)) {
    return RunGemm(
        stream,
        {CUBLAS_OP_N, w.cols, n, w.rows, w.data, type, w.cols, *ag, type, w.rows, 1.0f, y, w.cols},
        kOp);
  }
  // The reduction runs over the rows: tile it, every tile accumulating into Y (beta = 1).
  const int64_t tile_rows = TileRows(*arg);
  absl::StatusOr<uint16_t*> tile =
      scratch.Allocate<uint16_t>(static_cast<size_t>(tile_rows * w.cols));
  if (!tile.ok()) return tile.status();
  for (int64_t r0 = 0; r0 < w.rows; r0 += tile_rows) {
    const int64_t rows = std::min(tile_rows, w.rows - r0);
    if (absl::Status s = LaunchStatus(
            internal::LaunchDequantizeToF16(*arg, r0, rows, *tile, NativeStream(stream)), kOp);
        !s.ok()) {
      return s;
    }
    const void* a_tile = static_cast<const uint8_t*>(*ag) + static_cast<size_t>(r0) * element_bytes;
    if (absl::Status s = RunGemm(stream,
                                 {CUBLAS_OP_N, w.cols, n, rows, *tile, CUDA_R_16F, w.cols, a_tile,
                                  CUDA_R_16F, w.rows, 1.0f, y, w.cols},
                                 kOp);
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace pinfer::cuda
