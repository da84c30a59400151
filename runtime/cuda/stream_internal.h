// What a Stream holds, for pinfer_cuda's own sources (includes the CUDA headers).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "absl/status/statusor.h"
#include "runtime/cuda/scratch_arena.h"
#include "runtime/cuda/stream.h"

namespace pinfer::cuda::internal {

struct StreamState {
  StreamState(cudaStream_t stream, int device, int sm_count);
  ~StreamState();

  cudaStream_t stream;
  int device;
  int sm_count;  // of the stream's device: kernels size their grids by it
  cublasHandle_t cublas = nullptr;
  ScratchArena scratch;
};

inline cudaStream_t NativeStream(Stream& stream) { return stream.state().stream; }
inline int SmCount(Stream& stream) { return stream.state().sm_count; }
inline ScratchArena& Scratch(Stream& stream) { return stream.state().scratch; }
// The stream's cuBLAS handle, created on first use.
absl::StatusOr<cublasHandle_t> Cublas(Stream& stream);

}  // namespace pinfer::cuda::internal
