// What the OPT and Falcon forward tests share: the comparison of pinfer's logits with a fixture's
// f64 reference (batched, decoded token by token, greedy), the f32 KV cache they run with, and the
// stand-in device placements that must give the host's logits and text.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/session.h"
#include "tests/hybrid/hybrid_test_util.h"

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

// A deterministic prompt of n ids below vocab (salt: another prompt of the same length).
inline std::vector<int32_t> Prompt(int64_t n, int64_t vocab, int salt = 0) {
  std::vector<int32_t> tokens;
  for (int64_t i = 0; i < n; ++i) {
    tokens.push_back(static_cast<int32_t>((i * 97 + 13 + salt) % vocab));
  }
  return tokens;
}

// Every token of `prompt` decoded one at a time into one session: step i's logits are row i of
// `ref` ([prompt.size(), vocab]).
inline void ExpectDecodedLogitsNear(Executor& executor, const std::vector<int32_t>& prompt,
                                    const std::vector<double>& ref, int64_t vocab) {
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(executor, kF32Cache);
  ASSERT_TRUE(session.ok()) << session.status();
  for (size_t i = 0; i < prompt.size(); ++i) {
    absl::StatusOr<std::span<const float>> logits =
        (*session)->Evaluate(std::span<const int32_t>(&prompt[i], 1), Logits::kLast);
    ASSERT_TRUE(logits.ok()) << logits.status();
    ExpectNear(std::vector<double>(ref.begin() + i * vocab, ref.begin() + (i + 1) * vocab), *logits,
               "decoded token " + std::to_string(i));
  }
}

// `steps` argmax tokens after `prompt`: the batched prompt, then one token at a time.
inline std::vector<int32_t> SessionGreedy(Executor& executor,
                                          const std::vector<int32_t>& prompt, int steps) {
  std::vector<int32_t> greedy;
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(executor, kF32Cache);
  EXPECT_TRUE(session.ok()) << session.status();
  if (!session.ok()) return greedy;
  absl::StatusOr<std::span<const float>> logits = (*session)->Evaluate(prompt, Logits::kLast);
  for (int i = 0; i < steps && logits.ok(); ++i) {
    const int32_t token =
        static_cast<int32_t>(std::max_element(logits->begin(), logits->end()) - logits->begin());
    greedy.push_back(token);
    logits = (*session)->Evaluate(std::span<const int32_t>(&token, 1), Logits::kLast);
  }
  EXPECT_TRUE(logits.ok()) << logits.status();
  return greedy;
}

// Every placement on the CPU stand-in device (its own memory: a missing copy gives wrong logits),
// for each FFN split, attention pattern and classifier placement, gives the host's logits and
// greedy text.
inline void ExpectStandInPlacementsGiveTheHost(
    const Model& model, const std::vector<std::vector<std::vector<int32_t>>>& splits,
    const std::vector<bool>& classifiers) {
  const hybrid_test::PlacedRun host = hybrid_test::RunPlaced(model, {}, {});
  ASSERT_EQ(host.greedy.size(), 8u);
  for (size_t s = 0; s < splits.size(); ++s) {
    for (const std::string pattern : {"none", "all", "first"}) {
      for (const bool classifier : classifiers) {
        const std::string what = "split " + std::to_string(s) + ", attention " + pattern +
                                 (classifier ? ", classifier on the device" : "");
        const hybrid_test::PlacedRun placed = hybrid_test::RunPlaced(
            model, splits[s], {hybrid_test::AttentionPattern(model, pattern), classifier});
        hybrid_test::ExpectSameLogits(host.logits, placed.logits, what);
        EXPECT_EQ(host.greedy, placed.greedy) << what;
      }
    }
  }
}

}  // namespace pinfer::family_test
