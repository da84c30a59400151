#include "runtime/cuda/stream.h"

#include <utility>

#include "runtime/cuda/cuda_status.h"
#include "runtime/cuda/stream_internal.h"

namespace pinfer::cuda {
namespace internal {
namespace {

// The first chunk of scratch memory; the arena grows when an operation needs more.
constexpr size_t kMinScratchChunkBytes = size_t{16} << 20;

absl::StatusOr<void*> AllocateScratch(size_t bytes) {
  void* data = nullptr;
  if (absl::Status s = CudaStatus(cudaMalloc(&data, bytes), "cudaMalloc (stream scratch)");
      !s.ok()) {
    return s;
  }
  return data;
}

}  // namespace

StreamState::StreamState(cudaStream_t stream, int device, int sm_count)
    : stream(stream),
      device(device),
      sm_count(sm_count),
      scratch(
          AllocateScratch, [](void* data) { cudaFree(data); }, kMinScratchChunkBytes) {}

StreamState::~StreamState() {
  // The scratch memory and the cuBLAS workspace may still be in use by enqueued kernels.
  cudaStreamSynchronize(stream);
  if (cublas != nullptr) cublasDestroy(cublas);
  // `scratch` is freed after this body runs, the stream last (it is not a member that frees).
}

absl::StatusOr<cublasHandle_t> Cublas(Stream& stream) {
  StreamState& state = stream.state();
  if (state.cublas != nullptr) return state.cublas;
  cublasHandle_t handle = nullptr;
  if (absl::Status s = CublasStatus(cublasCreate(&handle), "cublasCreate"); !s.ok()) return s;
  if (absl::Status s = CublasStatus(cublasSetStream(handle, state.stream), "cublasSetStream");
      !s.ok()) {
    cublasDestroy(handle);
    return s;
  }
  state.cublas = handle;
  return handle;
}

}  // namespace internal

absl::StatusOr<Stream> Stream::Create() {
  int device = 0;
  if (absl::Status s = internal::CudaStatus(cudaGetDevice(&device), "cudaGetDevice"); !s.ok()) {
    return s;
  }
  int sm_count = 0;
  if (absl::Status s = internal::CudaStatus(
          cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device),
          "cudaDeviceGetAttribute(multiProcessorCount)");
      !s.ok()) {
    return s;
  }
  cudaStream_t stream = nullptr;
  if (absl::Status s = internal::CudaStatus(
          cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
      !s.ok()) {
    return s;
  }
  return Stream(std::make_unique<internal::StreamState>(stream, device, sm_count));
}

Stream::Stream(std::unique_ptr<internal::StreamState> state) : state_(std::move(state)) {}
Stream::Stream(Stream&&) noexcept = default;
Stream& Stream::operator=(Stream&& other) noexcept {
  if (this != &other) {
    if (state_ != nullptr) {
      cudaStream_t old = state_->stream;
      state_.reset();
      cudaStreamDestroy(old);
    }
    state_ = std::move(other.state_);
  }
  return *this;
}

Stream::~Stream() {
  if (state_ == nullptr) return;
  cudaStream_t stream = state_->stream;
  state_.reset();  // synchronises, frees the cuBLAS handle and the scratch memory
  cudaStreamDestroy(stream);
}

absl::Status Stream::Synchronize() {
  return internal::CudaStatus(cudaStreamSynchronize(state_->stream), "cudaStreamSynchronize");
}

absl::Status Stream::Wait(const Event& event) {
  return internal::CudaStatus(
      cudaStreamWaitEvent(state_->stream, static_cast<cudaEvent_t>(event.native_handle()), 0),
      "cudaStreamWaitEvent");
}

void* Stream::native_handle() const { return state_->stream; }

absl::StatusOr<Event> Event::Create(bool timing) {
  cudaEvent_t event = nullptr;
  const unsigned flags = timing ? cudaEventDefault : cudaEventDisableTiming;
  if (absl::Status s =
          internal::CudaStatus(cudaEventCreateWithFlags(&event, flags), "cudaEventCreateWithFlags");
      !s.ok()) {
    return s;
  }
  return Event(event);
}

Event::Event(Event&& other) noexcept : event_(std::exchange(other.event_, nullptr)) {}

Event& Event::operator=(Event&& other) noexcept {
  if (this != &other) {
    if (event_ != nullptr) cudaEventDestroy(static_cast<cudaEvent_t>(event_));
    event_ = std::exchange(other.event_, nullptr);
  }
  return *this;
}

Event::~Event() {
  if (event_ != nullptr) cudaEventDestroy(static_cast<cudaEvent_t>(event_));
}

absl::Status Event::Record(Stream& stream) {
  return internal::CudaStatus(
      cudaEventRecord(static_cast<cudaEvent_t>(event_), internal::NativeStream(stream)),
      "cudaEventRecord");
}

absl::Status Event::Synchronize() {
  return internal::CudaStatus(cudaEventSynchronize(static_cast<cudaEvent_t>(event_)),
                              "cudaEventSynchronize");
}

absl::StatusOr<bool> Event::IsComplete() const {
  const cudaError_t result = cudaEventQuery(static_cast<cudaEvent_t>(event_));
  if (result == cudaErrorNotReady) {
    // "Not actually an error" (CUDA docs): make sure it is not left as the thread's last error,
    // where the next launch check would find it.
    (void)cudaGetLastError();
    return false;
  }
  if (absl::Status s = internal::CudaStatus(result, "cudaEventQuery"); !s.ok()) return s;
  return true;
}

absl::StatusOr<float> Event::ElapsedMilliseconds(const Event& start, const Event& end) {
  float ms = 0.0f;
  if (absl::Status s =
          internal::CudaStatus(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start.event_),
                                                    static_cast<cudaEvent_t>(end.event_)),
                               "cudaEventElapsedTime");
      !s.ok()) {
    return s;
  }
  return ms;
}

}  // namespace pinfer::cuda
