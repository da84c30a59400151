// Perplexities against llama.cpp's (tests/data/reference_outputs.md), and the cost of quantization.
#include <cmath>
#include <cstdio>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/exec/perplexity.h"
#include "tests/runtime/runtime_harness.h"
#include "tests/runtime/test_models.h"

namespace pinfer {
namespace {

using test::BundledModel;

struct PerplexityCase {
  const char* text;  // under tests/data/text/
  int64_t context;
  int64_t chunks;
  double ppl;    // llama.cpp's "Final estimate"
  double error;  // and its ±
};

// reference_outputs.md: "Perplexity of stories260K.gguf, llama.cpp method".
constexpr PerplexityCase kLlamaCppPerplexities[] = {
    {"tinystories_valid_head.txt", 256, 40, 3.8233, 0.0969},
    {"tinystories_valid_head.txt", 128, 100, 3.9404, 0.0891},
    {"tinyshakespeare.txt", 256, 20, 70.9835, 4.5402},
};

PerplexityResult Measure(const std::string& model_path, const PerplexityCase& c) {
  test::Loaded l = test::LoadForTest(model_path, c.context);
  EXPECT_NE(l.session, nullptr);
  if (l.session == nullptr) return {};
  const std::string text = test::ReadRepoFile(std::string("tests/data/text/") + c.text);
  // pi-run and llama.cpp drop one trailing newline of the file.
  const std::string_view trimmed = !text.empty() && text.back() == '\n'
                                       ? std::string_view(text).substr(0, text.size() - 1)
                                       : std::string_view(text);
  PerplexityOptions options;
  options.max_chunks = c.chunks;
  absl::StatusOr<PerplexityResult> result =
      ComputePerplexity(*l.session, *l.tokenizer, trimmed, options);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : PerplexityResult{};
}

class LlamaCppPerplexityTest : public ::testing::TestWithParam<PerplexityCase> {};

TEST_P(LlamaCppPerplexityTest, F32MatchesWithinHalfAPercent) {
  const PerplexityCase& c = GetParam();
  const PerplexityResult r =
      Measure(test::ConvertedModel(BundledModel::kStories260K, DType::kF32), c);
  EXPECT_EQ(r.chunks, c.chunks);
  EXPECT_EQ(r.scored_tokens, c.chunks * (c.context - c.context / 2 - 1));
  EXPECT_NEAR(r.ppl, c.ppl, 0.005 * c.ppl) << c.text << " n_ctx " << c.context;
  EXPECT_NEAR(r.ppl_error, c.error, 0.02 * c.error);
}

INSTANTIATE_TEST_SUITE_P(Stories260K, LlamaCppPerplexityTest,
                         ::testing::ValuesIn(kLlamaCppPerplexities), [](const auto& info) {
                           const bool stories = absl::StartsWith(info.param.text, "tinystories");
                           return absl::StrCat(stories ? "TinyStories" : "Shakespeare", "Ctx",
                                               info.param.context);
                         });

// The README's pi-run --perplexity command itself, not only the library behind it: its "Final
// estimate" line is llama.cpp's number for the same text, context and chunks (within 0.5%, the
// library test's bound).
TEST(LlamaCppPerplexityCliTest, PiRunFinalEstimateMatchesLlamaCpp) {
  const PerplexityCase& c = kLlamaCppPerplexities[0];
  const test::ProgramResult r = test::RunProgram(
      PI_RUN_PATH, {"-m", test::ConvertedModel(BundledModel::kStories260K, DType::kF32),
                    "--perplexity", test::SourcePath(std::string("tests/data/text/") + c.text),
                    "-c", absl::StrCat(c.context), "--chunks", absl::StrCat(c.chunks), "-t", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  double ppl = 0, error = 0;
  ASSERT_EQ(std::sscanf(r.out.c_str(), "Final estimate: PPL = %lf +/- %lf", &ppl, &error), 2)
      << r.out;
  EXPECT_NEAR(ppl, c.ppl, 0.005 * c.ppl) << r.out;
  EXPECT_NEAR(error, c.error, 0.02 * c.error) << r.out;
  EXPECT_TRUE(absl::StrContains(r.err, absl::StrCat("[", c.chunks, "]"))) << r.err;
  EXPECT_FALSE(absl::StrContains(r.err, absl::StrCat("[", c.chunks + 1, "]"))) << r.err;
}

// Quantized weights against the f32 reference, with the bounds we measured (SIMD kernels, which
// quantize activations to 8 bits). pi-convert's q4_0 picks each block's scale for the least error
// and keeps the classifier at q8_0 (format/quant.h, tools/convert/converter.h); with llama.cpp's
// rule for both (--pure --ggml-q4-scales) q4_0 costs +13.5% and +10.9%:
//   stories260K, TinyStories n_ctx 256 × 40:  q8_0 +0.11%, q4_0 +8.7%
//   stories260K, Shakespeare n_ctx 256 × 20:  q8_0 −0.02%, q4_0 +1.9%
TEST(QuantizedPerplexityTest, Stories260KQ8_0WithinTwoPercent) {
  for (const PerplexityCase& c : {kLlamaCppPerplexities[0], kLlamaCppPerplexities[2]}) {
    const PerplexityResult r =
        Measure(test::ConvertedModel(BundledModel::kStories260K, DType::kQ8_0), c);
    EXPECT_NEAR(r.ppl, c.ppl, 0.02 * c.ppl) << c.text;
  }
}

TEST(QuantizedPerplexityTest, Stories260KQ4_0WithinTenPercent) {
  for (const PerplexityCase& c : {kLlamaCppPerplexities[0], kLlamaCppPerplexities[2]}) {
    const PerplexityResult r =
        Measure(test::ConvertedModel(BundledModel::kStories260K, DType::kQ4_0), c);
    EXPECT_GT(r.ppl, c.ppl) << c.text;  // 4 bits lose information: never better here
    EXPECT_LT(r.ppl, 1.10 * c.ppl) << c.text;
  }
}

// The ReLU model (native Q8_0 with group 64; its f32 conversion holds those values exactly). No
// independent reference exists for its perplexity: 8.1423 is our own measurement, kept as a
// regression value. TinyStories n_ctx 64 × 100 chunks: q8_0 8.1480 (+0.07%), q4_0 8.9145 (+9.5%;
// +13.4% with llama.cpp's q4_0 rule).
TEST(QuantizedPerplexityTest, ReluLlamaQuantizedAgainstF32) {
  const PerplexityCase c{"tinystories_valid_head.txt", 64, 100, 0, 0};
  const double f32 =
      Measure(test::ConvertedModel(BundledModel::kReluLlama260K, DType::kF32), c).ppl;
  const double q8 =
      Measure(test::ConvertedModel(BundledModel::kReluLlama260K, DType::kQ8_0), c).ppl;
  const double q4 =
      Measure(test::ConvertedModel(BundledModel::kReluLlama260K, DType::kQ4_0), c).ppl;
  EXPECT_NEAR(f32, 8.1423, 0.005 * 8.1423);
  EXPECT_NEAR(q8, f32, 0.02 * f32);
  EXPECT_GT(q4, f32);
  EXPECT_LT(q4, 1.10 * f32);
}

}  // namespace
}  // namespace pinfer
