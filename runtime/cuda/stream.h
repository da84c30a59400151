// CUDA streams and events behind opaque handles (no CUDA types in this header).
//
// Every pinfer_cuda operation is enqueued on a Stream and returns as soon as it is enqueued. A
// Stream also owns what its operations need besides the caller's buffers: a cuBLAS handle bound to
// it (created on first use) and device scratch memory (see scratch_arena.h). Use one Stream per
// host thread that enqueues work; work on different Streams may run concurrently.
#pragma once

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pinfer::cuda {

namespace internal {
struct StreamState;  // stream_internal.h
}  // namespace internal

class Event;

class Stream {
 public:
  // A non-blocking stream (it does not synchronise with the legacy default stream) on the current
  // device.
  static absl::StatusOr<Stream> Create();

  Stream(Stream&&) noexcept;
  Stream& operator=(Stream&&) noexcept;
  ~Stream();

  // Blocks the calling thread until everything enqueued so far has run; reports the first error
  // of those kernels (execution errors surface here, as in CUDA).
  absl::Status Synchronize();
  // Work enqueued on this stream after this call waits until `event` has completed.
  absl::Status Wait(const Event& event);

  // The cudaStream_t, for code that includes the CUDA headers itself.
  void* native_handle() const;
  // pinfer_cuda's own sources reach the cuBLAS handle and scratch memory through this.
  internal::StreamState& state() const { return *state_; }

 private:
  explicit Stream(std::unique_ptr<internal::StreamState> state);
  std::unique_ptr<internal::StreamState> state_;
};

class Event {
 public:
  // `timing`: whether ElapsedMilliseconds works with it (costs a little when recorded).
  static absl::StatusOr<Event> Create(bool timing = false);

  Event(Event&& other) noexcept;
  Event& operator=(Event&& other) noexcept;
  ~Event();

  // Captures the work enqueued on `stream` so far.
  absl::Status Record(Stream& stream);
  absl::Status Synchronize();
  // Whether the captured work has completed (does not block).
  absl::StatusOr<bool> IsComplete() const;
  // Milliseconds between two recorded timing events.
  static absl::StatusOr<float> ElapsedMilliseconds(const Event& start, const Event& end);

  void* native_handle() const { return event_; }

 private:
  explicit Event(void* event) : event_(event) {}
  void* event_ = nullptr;  // cudaEvent_t
};

}  // namespace pinfer::cuda
