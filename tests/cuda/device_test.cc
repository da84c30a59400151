// Device information, buffers, copies, streams and events on a real GPU (skipped without one).
#include <numeric>
#include <vector>

#include "absl/strings/match.h"
#include "tests/cuda/cuda_test_util.h"

namespace pinfer::cuda {
namespace {

using testing::CudaTest;

class DeviceTest : public CudaTest {};

TEST_F(DeviceTest, InfoDescribesTheDevice) {
  absl::StatusOr<int> device = CurrentDevice();
  ASSERT_TRUE(device.ok()) << device.status();
  absl::StatusOr<DeviceInfo> info = GetDeviceInfo(*device);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_FALSE(info->name.empty());
  EXPECT_GT(info->sm_count, 0);
  EXPECT_GT(info->total_memory_bytes, uint64_t{1} << 30);
  EXPECT_GT(info->free_memory_bytes, 0u);
  EXPECT_LE(info->free_memory_bytes, info->total_memory_bytes);
  EXPECT_GE(info->compute_major, 7);
  EXPECT_GT(info->runtime_version, 0);
  EXPECT_GT(info->driver_version, 0);
  EXPECT_TRUE(absl::StrContains(DescribeDevice(*info), info->name));
  // An out-of-range device is an error naming the call, not a crash.
  absl::StatusOr<DeviceInfo> bad = GetDeviceInfo(1000);
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "cudaGetDeviceProperties"));
}

TEST_F(DeviceTest, BuffersAndCopiesRoundTrip) {
  constexpr size_t kCount = 100000;
  absl::StatusOr<PinnedHostBuffer> pinned = PinnedHostBuffer::Allocate(kCount * sizeof(int32_t));
  ASSERT_TRUE(pinned.ok()) << pinned.status();
  std::iota(pinned->As<int32_t>(), pinned->As<int32_t>() + kCount, 7);

  DeviceBuffer a = Allocate(kCount * sizeof(int32_t));
  DeviceBuffer b = Allocate(kCount * sizeof(int32_t));
  ASSERT_NE(a.data(), nullptr);
  EXPECT_EQ(a.size(), kCount * sizeof(int32_t));
  PINFER_ASSERT_OK(CopyToDevice(stream(), a.data(), pinned->data(), a.size()));
  PINFER_ASSERT_OK(CopyOnDevice(stream(), b.data(), a.data(), a.size()));
  PINFER_ASSERT_OK(ZeroDevice(stream(), a.data(), a.size()));
  std::vector<int32_t> back = ToHost<int32_t>(b.data(), kCount);
  for (size_t i = 0; i < kCount; ++i) ASSERT_EQ(back[i], static_cast<int32_t>(i + 7));
  EXPECT_EQ(ToHost<int32_t>(a.data(), kCount), std::vector<int32_t>(kCount, 0));

  // Moving hands the memory over; Reset frees it.
  DeviceBuffer moved = std::move(b);
  EXPECT_EQ(b.data(), nullptr);
  EXPECT_NE(moved.data(), nullptr);
  moved.Reset();
  EXPECT_EQ(moved.size(), 0u);

  absl::StatusOr<DeviceBuffer> too_big = DeviceBuffer::Allocate(size_t{1} << 50);
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kResourceExhausted) << too_big.status();
  EXPECT_TRUE(absl::StrContains(too_big.status().message(), "cudaMalloc"));
}

TEST_F(DeviceTest, EventsOrderStreamsAndTimeWork) {
  absl::StatusOr<Stream> other = Stream::Create();
  ASSERT_TRUE(other.ok()) << other.status();
  absl::StatusOr<Event> start = Event::Create(/*timing=*/true);
  absl::StatusOr<Event> done = Event::Create(/*timing=*/true);
  ASSERT_TRUE(start.ok() && done.ok());

  constexpr size_t kBytes = size_t{64} << 20;
  DeviceBuffer source = Allocate(kBytes);
  DeviceBuffer target = Allocate(kBytes);
  PINFER_ASSERT_OK(ZeroDevice(stream(), target.data(), kBytes));
  std::vector<uint8_t> pattern(kBytes, 0xab);
  PINFER_ASSERT_OK(CopyToDevice(stream(), source.data(), pattern.data(), kBytes));
  PINFER_ASSERT_OK(start->Record(stream()));
  PINFER_ASSERT_OK(CopyOnDevice(stream(), target.data(), source.data(), kBytes));
  PINFER_ASSERT_OK(done->Record(stream()));
  // The other stream reads `target` only after the copy.
  PINFER_ASSERT_OK(other->Wait(*done));
  std::vector<uint8_t> back(kBytes);
  PINFER_ASSERT_OK(CopyToHost(*other, back.data(), target.data(), kBytes));
  PINFER_ASSERT_OK(other->Synchronize());
  EXPECT_EQ(back, pattern);

  PINFER_ASSERT_OK(done->Synchronize());
  absl::StatusOr<bool> complete = done->IsComplete();
  ASSERT_TRUE(complete.ok());
  EXPECT_TRUE(*complete);
  absl::StatusOr<float> ms = Event::ElapsedMilliseconds(*start, *done);
  ASSERT_TRUE(ms.ok()) << ms.status();
  EXPECT_GT(*ms, 0.0f);
}

}  // namespace
}  // namespace pinfer::cuda
