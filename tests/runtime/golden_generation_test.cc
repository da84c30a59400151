// Greedy generations of the bundled models against the independent references of
// tests/data/reference_outputs.md (llama.cpp for stories260K; a from-scratch forward pass for the
// ReLU model): the same text, to the last character.
#include <string>

#include "gtest/gtest.h"
#include "tests/runtime/runtime_harness.h"
#include "tests/runtime/test_models.h"

namespace pinfer {
namespace {

using test::BundledModel;

struct PromptCase {
  const char* prompt;
  const char* continuation;
};

// reference_outputs.md: "stories260K.gguf with llama.cpp (CPU, greedy)", 48 tokens each.
constexpr PromptCase kStoriesPrompts[] = {
    {"Once upon a time",
     ", there was a little girl named Lily. She loved to play outside in the park. One day, she "
     "saw "
     "a big, red ball. She wanted to play with it,"},
    {"The little dog",
     " was a little girl named Lily. She loved to play with her toys and her toys. One day, she "
     "saw "
     "a big box with a big box. It was a big,"},
    {"Lily and Tom went to the park",
     ". They saw a big box with a big box. They wanted to play with it. They wanted to play with "
     "the "
     "box. They wanted to play with the box.\n\"L"},
};

constexpr char kStoriesFromBos[] =
    " Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
    "One day, she saw a big, red ball. She wanted to play with";

constexpr char kReluFromBos[] =
    " Once upon a time, there was a little girl named Lily. She loved to play outside in the "
    "sunshine. One day, she saw a big, shiny ball. It was a big, red ball. It was a big, red ball. "
    "Lily was very happy and wanted to play with";

void ExpectStoriesPrompts(const std::string& model_path) {
  test::Loaded l = test::LoadForTest(model_path);
  ASSERT_NE(l.session, nullptr);
  for (const PromptCase& c : kStoriesPrompts) {
    EXPECT_EQ(test::GreedyContinuation(l, c.prompt, 48), c.continuation) << "prompt: " << c.prompt;
  }
}

TEST(GoldenGenerationTest, Stories260KBinPromptsMatchLlamaCpp) {
  ExpectStoriesPrompts(test::ConvertedModel(BundledModel::kStories260K, DType::kF32));
}

TEST(GoldenGenerationTest, Stories260KBinFromBosMatchesReference) {
  test::Loaded l = test::LoadForTest(test::ConvertedModel(BundledModel::kStories260K, DType::kF32));
  ASSERT_NE(l.session, nullptr);
  // The reference text is 50 generated tokens (the 51st would be " it").
  EXPECT_EQ(test::GreedyContinuation(l, "", 50), kStoriesFromBos);
}

TEST(GoldenGenerationTest, Stories260KGgufPromptsMatchLlamaCpp) {
  const std::string output = test::ScratchDir() + "/stories260K-gguf.pi";
  const test::ProgramResult convert =
      test::RunProgram(PI_CONVERT_PATH, {test::SourcePath("models/stories260K/stories260K.gguf"),
                                         "--dtype", "f32", "-q", "-o", output});
  // pi-convert imports GGUF: a failure here (the format not recognised...) is a failure.
  ASSERT_EQ(convert.exit_code, 0) << convert.err;
  ExpectStoriesPrompts(output);
}

TEST(GoldenGenerationTest, ReluLlamaFromBosMatchesReference) {
  test::Loaded l =
      test::LoadForTest(test::ConvertedModel(BundledModel::kReluLlama260K, DType::kF32));
  ASSERT_NE(l.session, nullptr);
  EXPECT_EQ(test::GreedyContinuation(l, "", 60), kReluFromBos);
}

}  // namespace
}  // namespace pinfer
