// The scratch arena's bookkeeping, with host memory standing in for device memory (runs in CI).
#include "runtime/cuda/scratch_arena.h"

#include <cstdint>
#include <cstdlib>
#include <set>

#include "gtest/gtest.h"

namespace pinfer::cuda::internal {
namespace {

class ScratchArenaTest : public ::testing::Test {
 protected:
  ScratchArena MakeArena(size_t min_chunk) {
    return ScratchArena(
        [this](size_t bytes) -> absl::StatusOr<void*> {
          if (fail_next_) return absl::ResourceExhaustedError("test allocator: out of memory");
          ++allocations_;
          void* p = std::aligned_alloc(ScratchArena::kAlignment, bytes);
          live_.insert(p);
          return p;
        },
        [this](void* p) {
          live_.erase(p);
          std::free(p);
        },
        min_chunk);
  }

  int allocations_ = 0;
  bool fail_next_ = false;
  std::set<void*> live_;
};

bool Aligned(void* p) { return reinterpret_cast<uintptr_t>(p) % ScratchArena::kAlignment == 0; }

TEST_F(ScratchArenaTest, ScopesReuseMemory) {
  {
    ScratchArena arena = MakeArena(4096);
    void* first = nullptr;
    {
      ScratchArena::Scope scope(arena);
      absl::StatusOr<void*> a = scope.Allocate(100);
      ASSERT_TRUE(a.ok());
      absl::StatusOr<void*> b = scope.Allocate(100);
      ASSERT_TRUE(b.ok());
      EXPECT_TRUE(Aligned(*a) && Aligned(*b));
      EXPECT_EQ(static_cast<uint8_t*>(*b) - static_cast<uint8_t*>(*a), 256);
      first = *a;
      EXPECT_EQ(arena.used_bytes(), 512u);
    }
    EXPECT_EQ(arena.used_bytes(), 0u);
    {
      ScratchArena::Scope scope(arena);
      absl::StatusOr<void*> again = scope.Allocate(1000);
      ASSERT_TRUE(again.ok());
      EXPECT_EQ(*again, first);  // the same memory serves the next operation
    }
    EXPECT_EQ(allocations_, 1);
    EXPECT_EQ(arena.chunk_count(), 1u);
  }
  EXPECT_TRUE(live_.empty());  // the destructor freed every chunk
}

TEST_F(ScratchArenaTest, NestedScopesKeepOuterBuffers) {
  ScratchArena arena = MakeArena(1024);
  ScratchArena::Scope outer(arena);
  absl::StatusOr<void*> a = outer.Allocate(512);
  ASSERT_TRUE(a.ok());
  void* inner_first = nullptr;
  {
    ScratchArena::Scope inner(arena);
    absl::StatusOr<void*> b = inner.Allocate(256);  // fits the first chunk
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(static_cast<uint8_t*>(*b) - static_cast<uint8_t*>(*a), 512);
    absl::StatusOr<void*> c = inner.Allocate(4096);  // does not: a new chunk
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(arena.chunk_count(), 2u);
    inner_first = *b;
  }
  // The outer buffer is untouched, the inner memory is free again.
  absl::StatusOr<void*> d = outer.Allocate(256);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, inner_first);
  EXPECT_EQ(arena.used_bytes(), 768u);
}

TEST_F(ScratchArenaTest, GrowsGeometricallyAndReusesLaterChunks) {
  ScratchArena arena = MakeArena(1024);
  {
    ScratchArena::Scope scope(arena);
    ASSERT_TRUE(scope.Allocate(1024).ok());
    ASSERT_TRUE(scope.Allocate(1024).ok());  // second chunk, at least twice the first
    ASSERT_TRUE(scope.Allocate(1024).ok());  // still fits the second chunk
    EXPECT_EQ(arena.chunk_count(), 2u);
    EXPECT_EQ(arena.reserved_bytes(), 1024u + 2048u);
  }
  {
    // A request too big for the first chunk moves on to the (empty) second one.
    ScratchArena::Scope scope(arena);
    ASSERT_TRUE(scope.Allocate(2000).ok());
    EXPECT_EQ(arena.chunk_count(), 2u);
  }
  EXPECT_EQ(allocations_, 2);
}

TEST_F(ScratchArenaTest, AllocationFailureIsReported) {
  ScratchArena arena = MakeArena(1024);
  ScratchArena::Scope scope(arena);
  fail_next_ = true;
  absl::StatusOr<void*> p = scope.Allocate(10);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kResourceExhausted);
  fail_next_ = false;
  EXPECT_TRUE(scope.Allocate(10).ok());
}

}  // namespace
}  // namespace pinfer::cuda::internal
