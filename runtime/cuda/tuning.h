// Knobs of pinfer_cuda's kernel selection, with defaults chosen for Hopper-class GPUs. Tests set
// them to exercise every path at small sizes; benches sweep them. Not thread-safe: set them before
// enqueueing work.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pinfer::cuda {

struct KernelTuning {
  // MatMul / MatMulTransposedAccumulate with n at most this run n mat-vecs (custom kernels that
  // read the weights once per token: best while memory-bound); above it, cuBLAS GEMMs.
  int64_t max_matvec_batch = 4;
  // The f16 copy of a quantized weight tile for the GEMM path (rows are converted tile by tile).
  size_t dequant_tile_bytes = size_t{64} << 20;
  // Thread blocks per SM aimed at by the transposed (down-projection) kernels, which trade
  // parallelism along the rows against partial sums to add.
  int transposed_blocks_per_sm = 2;
  // Scratch for the attention's per-split partial results; longer prefills are cut into query
  // chunks that fit.
  size_t attention_partials_bytes = size_t{64} << 20;
};

KernelTuning& MutableKernelTuning();
inline const KernelTuning& GetKernelTuning() { return MutableKernelTuning(); }

}  // namespace pinfer::cuda
