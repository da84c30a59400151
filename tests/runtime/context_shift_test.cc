// The context shift (Session::ShiftContext, Executor::ShiftCache) and pi-run generating past a
// full context with it.
//
// What a shift must give: the logits of a fresh session fed exactly the kept tokens. That is exact
// for a one-layer model only: there the KV entries depend on nothing but the token and its
// position, so re-rotated keys and moved values are the fresh session's. In deeper models the
// entries of layer 1 on were computed while the dropped tokens were in context (the approximation
// every context shift makes), so for stories260K's five layers the test checks the cache itself:
// every layer's rows moved and re-rotated, the kept rows untouched.
#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/cpu/reference_kernels.h"
#include "tests/runtime/runtime_harness.h"
#include "tests/runtime/story_words.h"
#include "tests/runtime/test_models.h"

namespace pinfer {
namespace {

using test::BundledModel;

std::string Stories() { return test::ConvertedModel(BundledModel::kStories260K, DType::kF32); }

// stories260K cut to its first layer (the metadata says one layer, the other blocks are gone).
std::string OneLayerStories() {
  static const std::string path = [] {
    const std::string to = test::ScratchDir() + "/stories_one_layer.pi";
    const absl::Status written = test::RewriteModel(
        Stories(), to, [](Metadata& m) { m.SetInt("llama.n_layers", 1); },
        [](std::vector<TensorSpec>& specs) {
          std::erase_if(specs, [](const TensorSpec& spec) {
            return absl::StartsWith(spec.name, "blk.") && !absl::StartsWith(spec.name, "blk.0.");
          });
        });
    EXPECT_TRUE(written.ok()) << written;
    return to;
  }();
  return path;
}

std::vector<float> LastLogits(Session& session, const std::vector<int32_t>& tokens) {
  absl::StatusOr<std::span<const float>> logits = session.Evaluate(tokens, Logits::kLast);
  EXPECT_TRUE(logits.ok()) << logits.status();
  return logits.ok() ? std::vector<float>(logits->begin(), logits->end()) : std::vector<float>();
}

// Within 1e-3 of the largest logit: the shifted and the fresh computation differ only by the f32
// rounding of the re-rotation and of the attention sums.
void ExpectSameLogits(const std::vector<float>& actual, const std::vector<float>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  ASSERT_FALSE(expected.empty());
  float largest = 0.0f;
  for (float v : expected) largest = std::max(largest, std::fabs(v));
  for (size_t i = 0; i < expected.size(); ++i) {
    ASSERT_NEAR(actual[i], expected[i], 1e-3f * largest) << "logit " << i;
  }
}

float LargestDifference(const std::vector<float>& a, const std::vector<float>& b) {
  float most = 0.0f;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    most = std::max(most, std::fabs(a[i] - b[i]));
  return most;
}

const char kStory[] =
    "Once upon a time there was a little girl named Lily. She loved to play outside in the park "
    "with her big red ball and her small brown dog, who liked to run after it all day long.";

TEST(ContextShiftTest, OneLayerModelGivesTheLogitsOfAFreshSessionOfTheKeptTokens) {
  test::Loaded shifted = test::LoadForTest(OneLayerStories(), 64);
  test::Loaded fresh = test::LoadForTest(OneLayerStories(), 64);
  ASSERT_NE(fresh.session, nullptr);
  ASSERT_NE(shifted.session, nullptr);
  ASSERT_EQ(shifted.model->n_layers(), 1);
  const std::vector<int32_t> story = shifted.tokenizer->Encode(kStory);
  ASSERT_GE(story.size(), 44u);
  const std::vector<int32_t> past(story.begin(), story.begin() + 40);
  const std::vector<int32_t> next = {story[40]};

  std::vector<float> unshifted;
  for (const int64_t keep : {1, 6, 0}) {
    SCOPED_TRACE(absl::StrCat("keep ", keep));
    shifted.session->Reset();
    LastLogits(*shifted.session, past);
    const int64_t discard = (40 - keep) / 2;  // llama.cpp's n_discard
    ASSERT_TRUE(shifted.session->ShiftContext(keep, discard).ok());
    std::vector<int32_t> kept(past.begin(), past.begin() + keep);
    kept.insert(kept.end(), past.begin() + keep + discard, past.end());
    EXPECT_EQ(shifted.session->tokens(), kept);
    EXPECT_EQ(shifted.session->position(), 40 - discard);

    const std::vector<float> after_shift = LastLogits(*shifted.session, next);
    fresh.session->Reset();
    kept.push_back(next[0]);
    ExpectSameLogits(after_shift, LastLogits(*fresh.session, kept));

    // The shift matters: the next token's logits with all 40 tokens in context differ.
    if (unshifted.empty()) {
      fresh.session->Reset();
      std::vector<int32_t> all = past;
      all.push_back(next[0]);
      unshifted = LastLogits(*fresh.session, all);
    }
    EXPECT_GT(LargestDifference(after_shift, unshifted), 1e-2f);
  }

  // Shifts in a row, with tokens evaluated between them: still the fresh session of what is left.
  shifted.session->Reset();
  LastLogits(*shifted.session, past);
  ASSERT_TRUE(shifted.session->ShiftContext(1, 19).ok());  // 21 left
  LastLogits(*shifted.session, {story[40], story[41]});    // 23
  ASSERT_TRUE(shifted.session->ShiftContext(1, 11).ok());  // 12 left
  const std::vector<float> twice = LastLogits(*shifted.session, {story[42]});
  fresh.session->Reset();
  ExpectSameLogits(twice, LastLogits(*fresh.session, shifted.session->tokens()));
}

// Every layer's cache after a shift, for each cache type: the kept rows as they were, the later
// rows moved down with their values unchanged and their keys rotated back by the shift (the scalar
// reference rotating the decoded keys), in stories260K's five layers. f32 keys are rotated in
// place (within f32 rounding); f16 and q8_0 keys are decoded, rotated and encoded again, so they
// are within one rounding of the type of the rotated keys: half an f16 ulp (2^-11 relative), half
// a q8_0 step and its f16 scale's rounding (about the block's largest magnitude / 226).
class ContextShiftCacheTest : public ::testing::TestWithParam<DType> {};

TEST_P(ContextShiftCacheTest, EveryLayersCacheRowsMoveAndTheirKeysAreReRotated) {
  const DType type = GetParam();
  test::Loaded l = test::LoadForTest(Stories(), 48, 256, type);
  ASSERT_NE(l.session, nullptr);
  ASSERT_EQ(l.session->KvCacheType(), type);
  const ModelConfig& c = l.model->config();
  ASSERT_GT(c.n_layers, 1);
  const std::vector<int32_t> story = l.tokenizer->Encode(kStory);
  const std::vector<int32_t> past(story.begin(), story.begin() + 30);
  LastLogits(*l.session, past);
  const KvCache& cache = l.session->state().kv;
  const int64_t kv = c.kv_dim();
  std::vector<std::vector<float>> keys(c.n_layers), values(c.n_layers);
  for (int64_t layer = 0; layer < c.n_layers; ++layer) {
    keys[layer].resize(30 * kv);
    values[layer].resize(30 * kv);
    cache.DecodeKeys(layer, 0, 30, keys[layer].data());
    cache.DecodeValues(layer, 0, 30, values[layer].data());
  }
  constexpr int64_t kKeep = 3, kDiscard = 10, kMoved = 30 - kKeep - kDiscard;
  ASSERT_TRUE(l.session->ShiftContext(kKeep, kDiscard).ok());

  for (int64_t layer = 0; layer < c.n_layers; ++layer) {
    SCOPED_TRACE(absl::StrCat("layer ", layer));
    std::vector<float> expected_keys(keys[layer].begin() + (kKeep + kDiscard) * kv,
                                     keys[layer].end());
    cpu::reference::RopeShift(expected_keys.data(), kMoved, kv, c.n_kv_heads, c.head_dim, -kDiscard,
                              c.rope_theta);
    std::vector<float> now_keys(30 * kv), now_values(30 * kv);
    cache.DecodeKeys(layer, 0, 30 - kDiscard, now_keys.data());
    cache.DecodeValues(layer, 0, 30 - kDiscard, now_values.data());
    for (int64_t i = 0; i < kKeep * kv; ++i) {
      ASSERT_EQ(now_keys[i], keys[layer][i]) << i;
      ASSERT_EQ(now_values[i], values[layer][i]) << i;
    }
    for (int64_t i = 0; i < kMoved * kv; ++i) {
      const int64_t at = kKeep * kv + i;
      ASSERT_EQ(now_values[at], values[layer][(kKeep + kDiscard) * kv + i]) << i;
      float bound = 1e-6f * (1.0f + std::fabs(expected_keys[i]));
      if (type == DType::kF16) bound = 1e-6f + std::fabs(expected_keys[i]) / 2048 * 1.001f;
      if (type == DType::kQ8_0) {
        const int64_t block = i / 32 * 32;
        float largest = 0.0f;
        for (int64_t j = block; j < block + 32; ++j)
          largest = std::max(largest, std::fabs(expected_keys[j]));
        // ggml's q8_0 rounds x / d with d = amax / 127 but stores d in f16: half a step plus
        // 127 times the scale's rounding (2^-11 relative).
        bound = largest / 127 * (0.5f + 127.0f / 2048) * 1.001f + 1e-6f;
      }
      ASSERT_NEAR(now_keys[at], expected_keys[i], bound) << i;
    }
  }
  // And generation goes on from there.
  const std::vector<float> next = LastLogits(*l.session, {story[30]});
  ASSERT_EQ(static_cast<int64_t>(next.size()), c.vocab_size);
  EXPECT_TRUE(std::all_of(next.begin(), next.end(), [](float v) { return std::isfinite(v); }));
  EXPECT_EQ(l.session->position(), 30 - kDiscard + 1);
}

INSTANTIATE_TEST_SUITE_P(CacheTypes, ContextShiftCacheTest,
                         ::testing::Values(DType::kF32, DType::kF16, DType::kQ8_0),
                         [](const auto& info) { return std::string(DTypeName(info.param)); });

TEST(ContextShiftTest, RefusesWhatItCannotDropAndChangesNothing) {
  test::Loaded l = test::LoadForTest(Stories(), 32);
  ASSERT_NE(l.session, nullptr);
  const std::vector<int32_t> tokens = l.tokenizer->Encode("Once upon a time there was");
  LastLogits(*l.session, tokens);
  const int64_t n = l.session->position();
  for (const auto& [keep, discard] : {std::pair<int64_t, int64_t>{1, 0}, {-1, 2}, {2, n - 1}}) {
    SCOPED_TRACE(absl::StrCat("keep ", keep, " discard ", discard));
    const absl::Status s = l.session->ShiftContext(keep, discard);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_EQ(l.session->tokens(), tokens);
  }
  EXPECT_TRUE(l.session->ShiftContext(1, n - 1).ok());  // everything but BOS may go
  EXPECT_EQ(l.session->position(), 1);
}

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// pi-run -c 64 -n 200: with the shift (the default) it generates all 200 tokens, noting each shift,
// and the text stays made of the words of the training stories; --no-context-shift stops at 64,
// and so does -n -1 (no budget, no shift: stories260K never chooses EOS).
TEST(ContextShiftTest, PiRunGeneratesPastTheContextInRealWords) {
  const std::vector<std::string> args = {
      "-m", Stories(), "-p", "Once upon a time", "-c", "64", "-n", "200", "--temp", "0", "-t", "1"};
  const test::ProgramResult shifted = test::RunProgram(PI_RUN_PATH, args);
  ASSERT_EQ(shifted.exit_code, 0) << shifted.err;
  // 5 prompt tokens; full at 64, each shift keeps BOS and drops (64 - 1) / 2 = 31: shifts after
  // 64, 95, 126, 157 and 188 evaluated tokens, of the 5 + 199 evaluated (the 200th is not).
  EXPECT_EQ(
      Count(shifted.err, "pi-run: context shift: kept the first 1 tokens, dropped the next 31"), 5)
      << shifted.err;
  EXPECT_TRUE(absl::StrContains(shifted.err, "decode: 199 tokens")) << shifted.err;
  EXPECT_FALSE(absl::StrContains(shifted.err, "is full")) << shifted.err;

  ASSERT_GT(test::StoryVocabulary().size(), 1000u);
  ASSERT_TRUE(absl::StartsWith(shifted.out, "Once upon a time")) << shifted.out;
  const std::vector<std::string> generated = test::Words(shifted.out.substr(16));
  ASSERT_GT(generated.size(), 90u) << shifted.out;  // 200 tokens: about 110 words
  EXPECT_GT(test::KnownWordShare(generated), 0.9) << shifted.out;

  std::vector<std::string> stop_args = args;
  stop_args.push_back("--no-context-shift");
  const test::ProgramResult stopped = test::RunProgram(PI_RUN_PATH, stop_args);
  ASSERT_EQ(stopped.exit_code, 0) << stopped.err;
  EXPECT_TRUE(absl::StrContains(stopped.err, "pi-run: the context of 64 tokens is full\n"))
      << stopped.err;
  EXPECT_FALSE(absl::StrContains(stopped.err, "context shift")) << stopped.err;
  EXPECT_TRUE(absl::StrContains(stopped.err, "decode: 59 tokens")) << stopped.err;  // 5 + 59 = 64
  // Up to the full context both runs are the same text.
  ASSERT_GT(stopped.out.size(), 100u);
  EXPECT_TRUE(absl::StartsWith(shifted.out, stopped.out.substr(0, stopped.out.size() - 1)))
      << stopped.out;

  // Without a budget (-n -1) there is no shift: a full context ends the generation.
  std::vector<std::string> unbounded_args = args;
  unbounded_args[7] = "-1";
  const test::ProgramResult unbounded = test::RunProgram(PI_RUN_PATH, unbounded_args);
  ASSERT_EQ(unbounded.exit_code, 0) << unbounded.err;
  EXPECT_EQ(unbounded.out, stopped.out);
  EXPECT_TRUE(absl::StrContains(unbounded.err, "pi-run: the context of 64 tokens is full\n"))
      << unbounded.err;

  // --keep -1 keeps the whole prompt; when the prompt fills the context a shift has nothing to
  // drop: the context is full, with the reason.
  test::Loaded l = test::LoadForTest(Stories());
  ASSERT_NE(l.tokenizer, nullptr);
  const int64_t prompt_tokens =
      static_cast<int64_t>(l.tokenizer->Encode("Once upon a time").size());
  std::vector<std::string> keep_args = args;
  keep_args[5] = std::to_string(prompt_tokens);
  keep_args.insert(keep_args.end(), {"--keep", "-1"});
  const test::ProgramResult kept = test::RunProgram(PI_RUN_PATH, keep_args);
  ASSERT_EQ(kept.exit_code, 0) << kept.err;
  EXPECT_TRUE(absl::StrContains(kept.err, absl::StrCat("pi-run: the context of ", prompt_tokens,
                                                       " tokens is full (--keep leaves nothing to "
                                                       "drop)\n")))
      << kept.err;
  EXPECT_FALSE(absl::StrContains(kept.err, "context shift")) << kept.err;
}

TEST(ContextShiftTest, PiRunRefusesABadKeep) {
  const test::ProgramResult r =
      test::RunProgram(PI_RUN_PATH, {"-m", Stories(), "-p", "Once", "-n", "2", "--keep", "-2"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_TRUE(absl::StrContains(r.err, "--keep")) << r.err;
  EXPECT_EQ(Count(r.err, "\n"), 1) << r.err;
}

}  // namespace
}  // namespace pinfer
