#include "bench/kernels/read_peak.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "bench/kernels/read_peak.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace pinfer::bench {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

uint64_t SumWords(const uint64_t* data, int64_t words) {
  const hn::ScalableTag<uint64_t> d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  constexpr int kStreams = 4;
  const int64_t stream_words = words / kStreams / (2 * lanes) * (2 * lanes);
  auto a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
  auto b0 = hn::Zero(d), b1 = hn::Zero(d), b2 = hn::Zero(d), b3 = hn::Zero(d);
  const uint64_t* s0 = data;
  const uint64_t* s1 = data + stream_words;
  const uint64_t* s2 = data + 2 * stream_words;
  const uint64_t* s3 = data + 3 * stream_words;
  for (int64_t i = 0; i < stream_words; i += 2 * lanes) {
    a0 = hn::Add(a0, hn::LoadU(d, s0 + i));
    b0 = hn::Add(b0, hn::LoadU(d, s0 + i + lanes));
    a1 = hn::Add(a1, hn::LoadU(d, s1 + i));
    b1 = hn::Add(b1, hn::LoadU(d, s1 + i + lanes));
    a2 = hn::Add(a2, hn::LoadU(d, s2 + i));
    b2 = hn::Add(b2, hn::LoadU(d, s2 + i + lanes));
    a3 = hn::Add(a3, hn::LoadU(d, s3 + i));
    b3 = hn::Add(b3, hn::LoadU(d, s3 + i + lanes));
  }
  const auto sum =
      hn::Add(hn::Add(hn::Add(a0, b0), hn::Add(a1, b1)), hn::Add(hn::Add(a2, b2), hn::Add(a3, b3)));
  uint64_t total = hn::GetLane(hn::SumOfLanes(d, sum));
  for (int64_t i = kStreams * stream_words; i < words; ++i) total += data[i];
  return total;
}

}  // namespace HWY_NAMESPACE
}  // namespace pinfer::bench
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pinfer::bench {

HWY_EXPORT(SumWords);

uint64_t SumWords(const uint64_t* data, int64_t words) {
  return HWY_DYNAMIC_DISPATCH(SumWords)(data, words);
}

}  // namespace pinfer::bench
#endif  // HWY_ONCE
