// pi-run end to end: what goes to stdout and stderr, and one clear line for each kind of bad input.
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "format/strings.h"
#include "gtest/gtest.h"
#include "tests/runtime/test_models.h"

namespace pinfer {
namespace {

using test::BundledModel;

test::ProgramResult PiRun(const std::vector<std::string>& args, const std::string& input = "") {
  return test::RunProgram(PI_RUN_PATH, args, input);
}

std::string Stories() { return test::ConvertedModel(BundledModel::kStories260K, DType::kF32); }

// A failed run ends with one line "pi-run: error: ..." (after the model summary when the problem
// shows only once the model is loaded) and prints nothing on stdout.
void ExpectOneLineError(const test::ProgramResult& r, const char* mention) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(r.out.empty()) << r.out;
  ASSERT_TRUE(absl::EndsWith(r.err, "\n")) << r.err;
  const std::string_view err = std::string_view(r.err).substr(0, r.err.size() - 1);
  const std::string_view last = err.substr(err.rfind('\n') + 1);
  EXPECT_TRUE(absl::StartsWith(Sv(last), "pi-run: error: ")) << r.err;
  EXPECT_TRUE(absl::StrContains(Sv(last), mention)) << r.err << " lacks " << mention;
  EXPECT_FALSE(absl::StrContains(Sv(err.substr(0, err.size() - last.size())), "error")) << r.err;
}

// reference_outputs.md: the greedy text of stories260K from BOS.
constexpr char kFromBos[] =
    " Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";

TEST(PiRunCliTest, StdoutHoldsThePromptAndTheGenerationOnly) {
  const test::ProgramResult r =
      PiRun({"-m", Stories(), "-p", "Once upon a time", "-n", "48", "--temp", "0", "-t", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(
      r.out,
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
      "park. One day, she saw a big, red ball. She wanted to play with it,\n");
  for (const char* timing : {"loaded in", "prompt: ", "decode: 47 tokens", "tokens/s", "GB/s"}) {
    EXPECT_TRUE(absl::StrContains(r.err, timing)) << r.err << " lacks " << timing;
  }
}

TEST(PiRunCliTest, EmptyPromptGeneratesFromBos) {
  const test::ProgramResult r = PiRun({"-m", Stories(), "-p", "", "-n", "12", "--temp", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_GT(r.out.size(), 20u);
  EXPECT_TRUE(absl::StartsWith(kFromBos, r.out.substr(0, r.out.size() - 1))) << r.out;
}

TEST(PiRunCliTest, PromptFromAFile) {
  const std::string file = test::ScratchDir() + "/prompt.txt";
  {
    std::ofstream out(file);
    out << "The little dog\n";  // one trailing newline is dropped, as llama.cpp does
  }
  const test::ProgramResult r = PiRun({"-m", Stories(), "-f", file, "-n", "4", "--temp", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // reference_outputs.md: "The little dog" continues " was a little girl named Lily."
  ASSERT_TRUE(absl::StartsWith(r.out, "The little dog was")) << r.out;
  const std::string continuation = r.out.substr(14, r.out.size() - 15);
  EXPECT_TRUE(absl::StartsWith(" was a little girl named Lily.", continuation)) << r.out;
}

TEST(PiRunCliTest, SamplingIsReproducibleWithASeed) {
  const std::vector<std::string> args = {"-m",      Stories(), "-p",      "Tom",     "-n",
                                         "24",      "--temp",  "1.0",     "--top-k", "0",
                                         "--top-p", "1",       "--min-p", "0",       "--seed"};
  std::vector<std::string> a = args, b = args, c = args;
  a.push_back("7");
  b.push_back("7");
  c.push_back("8");
  const test::ProgramResult ra = PiRun(a), rb = PiRun(b), rc = PiRun(c);
  ASSERT_EQ(ra.exit_code, 0) << ra.err;
  EXPECT_EQ(ra.out, rb.out);
  EXPECT_NE(ra.out, rc.out);
  EXPECT_TRUE(absl::StrContains(ra.err, "seed 7")) << ra.err;
}

TEST(PiRunCliTest, PerplexityEndsWithTheFinalEstimate) {
  const test::ProgramResult r =
      PiRun({"-m", Stories(), "--perplexity",
             test::SourcePath("tests/data/text/tinyshakespeare.txt"), "-c", "64", "--chunks", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StartsWith(r.out, "Final estimate: PPL = ")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, " +/- ")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.err, "[1]")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "[3]")) << r.err;
}

TEST(PiRunCliTest, InteractiveContinuesWithEachLine) {
  const test::ProgramResult r =
      PiRun({"-m", Stories(), "-p", "Once upon a time", "-n", "6", "--temp", "0", "-i"},
            "Lily went home\nThe end\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The prompt and its 6 tokens, then each typed line (as the model saw it: with the leading space
  // the tokenizer adds) followed by 6 more tokens.
  EXPECT_TRUE(absl::StartsWith(r.out, "Once upon a time, there was a little")) << r.out;
  const size_t home = r.out.find(" Lily went home");
  const size_t end = r.out.find(" The end");
  ASSERT_NE(home, std::string::npos) << r.out;
  ASSERT_NE(end, std::string::npos) << r.out;
  EXPECT_GT(end, home + 15 + 6) << r.out;
  EXPECT_GT(r.out.size(), end + 8 + 6) << r.out;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '>'), 3) << r.err;  // one prompt per line, + EOF
}

TEST(PiRunCliTest, PromptLongerThanTheContext) {
  const std::string prompt = "Once upon a time there was a little girl who liked to play outside";
  ExpectOneLineError(PiRun({"-m", Stories(), "-c", "8", "-p", prompt, "-n", "2"}),
                     "more than the context of 8");
  const test::ProgramResult r =
      PiRun({"-m", Stories(), "-c", "8", "-p", prompt, "-n", "2", "--temp", "0", "--truncate"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "--truncate: dropped")) << r.err;
  // The end of the prompt stays ("...outside"), its start is gone.
  EXPECT_TRUE(absl::StrContains(r.out, "side")) << r.out;
  EXPECT_FALSE(absl::StrContains(r.out, "Once")) << r.out;
}

TEST(PiRunCliTest, BadFlagsAndInputs) {
  ExpectOneLineError(PiRun({"-m", Stories(), "-t", "0"}), "-t");
  ExpectOneLineError(PiRun({"-m", Stories(), "--temp", "hot"}), "--temp");
  ExpectOneLineError(PiRun({"-m", Stories(), "-n", "ten"}), "-n");
  ExpectOneLineError(PiRun({"-m", Stories(), "--top-p", "1.5"}), "--top-p");
  ExpectOneLineError(PiRun({"-m", test::ScratchDir() + "/missing.pi"}), "missing.pi");
  ExpectOneLineError(PiRun({"-m", Stories(), "--perplexity", test::ScratchDir() + "/none.txt"}),
                     "none.txt");
  ExpectOneLineError(PiRun({"-p", "hello"}), "-m");
  // Values that used to be replaced by defaults.
  ExpectOneLineError(PiRun({"-m", Stories(), "--sparse-crossover", "-1"}),
                     "--sparse-crossover: must lie in [0, 1], got -1");
  ExpectOneLineError(PiRun({"-m", Stories(), "--sparse-crossover", "nan"}),
                     "--sparse-crossover: expected a finite number");
  ExpectOneLineError(PiRun({"-m", Stories(), "--seed", "-5"}), "--seed: must lie in [0, ");
  ExpectOneLineError(PiRun({"-m", Stories(), "--top-k", "-3", "-n", "2"}),
                     "--top-k must be 0 (off) or more, got -3");
  // Too little text for two chunks.
  const std::string short_text = test::ScratchDir() + "/short.txt";
  {
    std::ofstream out(short_text);
    out << "Just a few words.";
  }
  ExpectOneLineError(PiRun({"-m", Stories(), "--perplexity", short_text, "-c", "64"}),
                     "needs at least 128");
}

TEST(PiRunCliTest, ModelProblemsAreOneLine) {
  const std::string no_tokenizer = test::ScratchDir() + "/no_tokenizer.pi";
  ASSERT_TRUE(test::RewriteModel(Stories(), no_tokenizer, [](Metadata& m) {
                m.Erase("tokenizer.model");
              }).ok());
  ExpectOneLineError(PiRun({"-m", no_tokenizer}), "no tokenizer");

  const std::string falcon = test::ScratchDir() + "/falcon.pi";
  ASSERT_TRUE(test::RewriteModel(Stories(), falcon, [](Metadata& m) {
                m.SetString("general.architecture", "falcon");
              }).ok());
  ExpectOneLineError(PiRun({"-m", falcon}), "unknown architecture 'falcon'");

  const std::string swish = test::ScratchDir() + "/swish.pi";
  ASSERT_TRUE(test::RewriteModel(Stories(), swish, [](Metadata& m) {
                m.SetString("llama.ffn_act", "swish");
              }).ok());
  ExpectOneLineError(PiRun({"-m", swish}), "unknown activation 'swish'");
}

// A context the machine cannot hold is refused at once with the numbers, not killed by the OOM
// killer: 2e9 positions of stories260K need 2.4 TiB of KV cache.
TEST(PiRunCliTest, AContextTooLargeForMemoryIsRefusedWithTheLargestThatFits) {
  ExpectOneLineError(PiRun({"-m", Stories(), "-c", "2000000000", "-p", "Once", "-n", "2"}),
                     "of memory is available; the largest context that fits is -c ");
}

// The KV cache is not touched before positions are used: a 5-token run with a million positions
// (1.2 GiB of KV cache if it were zero-filled) costs no more memory than one with 512.
TEST(PiRunCliTest, AnUnusedContextCostsNoMemory) {
  auto peak_child_rss_mb = [] {
    struct rusage usage;
    getrusage(RUSAGE_CHILDREN, &usage);
    return usage.ru_maxrss / 1024.0;
  };
  const test::ProgramResult small =
      PiRun({"-m", Stories(), "-c", "512", "-p", "Once", "-n", "4", "--temp", "0", "-t", "1"});
  ASSERT_EQ(small.exit_code, 0) << small.err;
  const double small_mb = peak_child_rss_mb();
  const test::ProgramResult large =
      PiRun({"-m", Stories(), "-c", "1000000", "-p", "Once", "-n", "4", "--temp", "0", "-t", "1"});
  ASSERT_EQ(large.exit_code, 0) << large.err;
  EXPECT_EQ(large.out, small.out);
  EXPECT_LT(peak_child_rss_mb(), small_mb + 200) << "with 512 positions: " << small_mb << " MB";
}

// Inputs that are not regular files: a FIFO would block open() forever, a directory as -f used
// to give an empty prompt.
TEST(PiRunCliTest, AFifoOrADirectoryIsRefusedAtOnce) {
  const std::string fifo = test::ScratchDir() + "/model_fifo.pi";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  const test::ProgramResult r =
      test::RunProgram("timeout", {"-s", "KILL", "20", PI_RUN_PATH, "-m", fifo, "-p", "x"});
  ExpectOneLineError(r, "model_fifo.pi: not a regular file (it is a FIFO)");
  ExpectOneLineError(PiRun({"-m", Stories(), "-f", test::ScratchDir(), "-n", "2"}),
                     "not a regular file (it is a directory)");
}

// Another model's predictor beside a model is named as such, before what else the model would
// need (stories260K is silu: sparse execution would also need calibrated thresholds).
TEST(PiRunCliTest, AnotherModelsPredictorIsNamedAsSuch) {
  const std::string dir = test::ScratchDir();
  const std::string model = dir + "/s.pi", predictor = dir + "/s.predictor.pi";
  std::filesystem::copy_file(Stories(), model);
  std::filesystem::copy_file(test::ReluModelWithPredictor().predictor, predictor);
  ExpectOneLineError(PiRun({"-m", model, "-p", "Once", "-n", "2"}), (predictor + ": ").c_str());
  ExpectOneLineError(PiRun({"-m", model, "-p", "Once", "-n", "2"}),
                     "the predictor was trained for another model");
}

// More threads than the hardware has are capped, with a warning: -t 1000 made decode 260x slower.
TEST(PiRunCliTest, ThreadsBeyondTheHardwareAreCappedWithAWarning) {
  const test::ProgramResult r =
      test::RunProgram("timeout", {"-s", "KILL", "60", PI_RUN_PATH, "-m", Stories(), "-p", "Once",
                                   "-n", "8", "--temp", "0", "-t", "100000"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "pi-run: warning: -t 100000 exceeds the ")) << r.err;
}

}  // namespace
}  // namespace pinfer
