// What the OPT and Falcon forward tests share: the comparison of pinfer's logits with a fixture's
// f64 reference, and the f32 KV cache they run with.
#pragma once

#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/exec/session.h"

namespace pinfer::family_test {

// max |ref - got| <= 2e-4 · max(1, max |ref|): f32 products against f64.
inline void ExpectNear(const std::vector<double>& ref, std::span<const float> got,
                       const std::string& what) {
  ASSERT_EQ(ref.size(), got.size()) << what;
  double scale = 1.0, worst = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    scale = std::max(scale, std::fabs(ref[i]));
    worst = std::max(worst, std::fabs(ref[i] - got[i]));
  }
  EXPECT_LE(worst, 2e-4 * scale) << what << ": logits differ by " << worst << " (scale " << scale
                                 << ")";
}

// An f32 KV cache: the comparison is with f64, the default f16 cache would round every key.
inline const SessionOptions kF32Cache{.context_length = 64, .cache_type = DType::kF32};

}  // namespace pinfer::family_test
