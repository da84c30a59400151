// Shared by the CUDA backend and the CUDA FFN parts (both in CUDA builds only): the stream of a
// CUDA backend, on which the FFN parts enqueue so that they follow the dense work in order.
#pragma once

#include "runtime/cuda/stream.h"
#include "runtime/exec/backend.h"

namespace pinfer {

// The backend's stream, or null when `backend` is not the CUDA backend.
cuda::Stream* CudaStreamOf(Backend& backend);

}  // namespace pinfer
