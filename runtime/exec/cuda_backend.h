// The CUDA implementation of the backend interface (backend.h) over runtime/cuda's kernels, all on
// one stream: the plan's dense parts on the GPU (attention with its f16 KV cache, norms, RoPE, the
// classifier). The CUDA FFN parts (cuda_ffn_part.h) enqueue on the same stream, so a layer whose
// hidden state is on the device runs in stream order without host round trips. No CUDA types
// here; a build without the CUDA backend returns Unavailable.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "runtime/exec/backend.h"

namespace pinfer {

// The backend on the current device; Unavailable without a device or a CUDA build.
absl::StatusOr<std::shared_ptr<Backend>> CreateCudaBackend();

}  // namespace pinfer
