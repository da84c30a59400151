// pi-run end to end: what goes to stdout and stderr, and one clear line for each kind of bad input.
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
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

// A greedy run says so, instead of samplers and a seed that play no part in it; the repetition
// penalty, which does, is named when it is on.
TEST(PiRunCliTest, GreedyRunsSaySamplingGreedy) {
  const test::ProgramResult greedy =
      PiRun({"-m", Stories(), "-p", "Tom", "-n", "4", "--temp", "0"});
  ASSERT_EQ(greedy.exit_code, 0) << greedy.err;
  EXPECT_TRUE(absl::StrContains(greedy.err, "pi-run: sampling: greedy\n")) << greedy.err;
  EXPECT_FALSE(absl::StrContains(greedy.err, "seed")) << greedy.err;
  EXPECT_FALSE(absl::StrContains(greedy.err, "top-k")) << greedy.err;
  const test::ProgramResult penalized =
      PiRun({"-m", Stories(), "-p", "Tom", "-n", "4", "--temp", "0", "--repeat-penalty", "1.5"});
  ASSERT_EQ(penalized.exit_code, 0) << penalized.err;
  EXPECT_TRUE(
      absl::StrContains(penalized.err, "pi-run: sampling: greedy, repeat-penalty 1.50 (last 64)\n"))
      << penalized.err;
  const test::ProgramResult sampled = PiRun({"-m", Stories(), "-p", "Tom", "-n", "4"});
  ASSERT_EQ(sampled.exit_code, 0) << sampled.err;
  EXPECT_TRUE(absl::StrContains(sampled.err, "pi-run: sampling: temp 0.80, top-k 40, top-p 0.95"))
      << sampled.err;
  EXPECT_TRUE(absl::StrContains(sampled.err, ", seed ")) << sampled.err;
  EXPECT_FALSE(absl::StrContains(sampled.err, "greedy")) << sampled.err;
}

// --repeat-penalty changes a greedy text; 1 is the default and leaves it as it is.
TEST(PiRunCliTest, RepeatPenaltyChangesTheGreedyText) {
  const std::vector<std::string> args = {"-m", Stories(), "-p",     "Once upon a time",
                                         "-n", "40",      "--temp", "0"};
  auto with = [&args](std::vector<std::string> more) {
    std::vector<std::string> all = args;
    all.insert(all.end(), more.begin(), more.end());
    const test::ProgramResult r = PiRun(all);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  };
  const std::string plain = with({});
  EXPECT_EQ(with({"--repeat-penalty", "1.0"}), plain);
  const std::string penalized = with({"--repeat-penalty", "1.5"});
  EXPECT_TRUE(absl::StartsWith(penalized, "Once upon a time")) << penalized;
  EXPECT_NE(penalized, plain);
}

// --no-populate only changes how the model is mapped (no MAP_POPULATE): the same text, and a note
// that the first tokens' timings then include disk reads.
TEST(PiRunCliTest, NoPopulateGivesTheSameTextWithANote) {
  const std::vector<std::string> args = {"-m", Stories(), "-p", "Tom", "-n", "12", "--temp", "0"};
  const test::ProgramResult populated = PiRun(args);
  std::vector<std::string> lazy_args = args;
  lazy_args.push_back("--no-populate");
  const test::ProgramResult lazy = PiRun(lazy_args);
  ASSERT_EQ(populated.exit_code, 0) << populated.err;
  ASSERT_EQ(lazy.exit_code, 0) << lazy.err;
  EXPECT_EQ(lazy.out, populated.out);
  EXPECT_TRUE(absl::StrContains(lazy.err,
                                "pi-run: note: --no-populate: the model is read from "
                                "disk as its pages are first touched"))
      << lazy.err;
  EXPECT_FALSE(absl::StrContains(populated.err, "--no-populate")) << populated.err;
}

// A context beyond the model's training context is allowed, with one warning line (llama.cpp's
// "n_ctx > n_ctx_train"); the model's own context or less, none. stories260K is trained on 512.
TEST(PiRunCliTest, AContextBeyondTheTrainedOneWarnsOnce) {
  auto warnings = [](const std::string& context) {
    const test::ProgramResult r =
        PiRun({"-m", Stories(), "-c", context, "-p", "Tom", "-n", "2", "--temp", "0"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> lines;
    for (absl::string_view line : absl::StrSplit(r.err, '\n')) {
      if (absl::StrContains(line, "n_ctx_train")) lines.emplace_back(line);
    }
    return lines;
  };
  const std::vector<std::string> beyond = warnings("1024");
  ASSERT_EQ(beyond.size(), 1u);
  EXPECT_TRUE(absl::StartsWith(beyond[0], "pi-run: warning: n_ctx 1024 > n_ctx_train 512"))
      << beyond[0];
  EXPECT_TRUE(warnings("512").empty());
  EXPECT_TRUE(warnings("0").empty());
}

// "N/M layer calls fell back to dense" from the FFN summary line.
std::pair<int64_t, int64_t> DenseFallbacks(const std::string& err) {
  const std::string marker = " layer calls fell back to dense";
  const size_t end = err.find(marker);
  if (end == std::string::npos) return {-1, -1};
  const size_t start = err.rfind(' ', end - 1) + 1;
  const std::vector<std::string> counts = absl::StrSplit(err.substr(start, end - start), '/');
  int64_t fell = -1, calls = -1;
  if (counts.size() != 2 || !absl::SimpleAtoi(counts[0], &fell) ||
      !absl::SimpleAtoi(counts[1], &calls)) {
    return {-1, -1};
  }
  return {fell, calls};
}

// --sparse-crossover D replaces the measured cost model: below density D a layer computes its
// selected neurons, at or above it every neuron. D = 0 makes every call fall back to dense, D = 1
// none (the relu model's selections are about 23% dense); the text stays the dense one.
// (--oracle-sparse selects the true activations: the same cost model as a predictor's selection,
// without training one.)
TEST(PiRunCliTest, SparseCrossoverDecidesTheDenseFallback) {
  const std::string relu = test::ConvertedModel(BundledModel::kReluLlama260K);
  auto run = [&relu](const char* crossover) {
    const test::ProgramResult r =
        PiRun({"-m", relu, "--oracle-sparse", "--sparse-crossover", crossover, "-p",
               "Once upon a time", "-n", "16", "--temp", "0", "-t", "1"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(absl::StrContains(
        r.err, absl::StrCat("cost model fixed crossover density ", crossover, ".000")))
        << r.err;
    return r;
  };
  const test::ProgramResult always_dense = run("0");
  const test::ProgramResult never_dense = run("1");
  const auto [fell_at_0, calls_at_0] = DenseFallbacks(always_dense.err);
  const auto [fell_at_1, calls_at_1] = DenseFallbacks(never_dense.err);
  EXPECT_GT(calls_at_0, 0) << always_dense.err;
  EXPECT_EQ(fell_at_0, calls_at_0) << always_dense.err;
  EXPECT_EQ(calls_at_1, calls_at_0) << never_dense.err;
  EXPECT_EQ(fell_at_1, 0) << never_dense.err;
  EXPECT_EQ(never_dense.out, always_dense.out);
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

// --help says what -i is (the text continued with each line, not a chat) and where the chat is.
TEST(PiRunCliTest, HelpTellsContinuationFromChat) {
  const test::ProgramResult r = PiRun({"--help"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string interactive, conversation;
  for (absl::string_view line : absl::StrSplit(r.out, '\n')) {
    if (absl::StrContains(line, "-i,--interactive")) interactive = std::string(line);
    if (absl::StrContains(line, "--conversation")) conversation = std::string(line);
  }
  EXPECT_TRUE(absl::StrContains(interactive, "continue the text")) << r.out;
  EXPECT_TRUE(absl::StrContains(interactive, "no chat template")) << r.out;
  EXPECT_TRUE(absl::StrContains(conversation, "-cnv: chat")) << r.out;
  EXPECT_TRUE(absl::StrContains(conversation, "chat template")) << r.out;
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
  ExpectOneLineError(PiRun({"-m", Stories(), "--cache-type", "q4_0"}),
                     "--cache-type must be f32, f16 or q8_0, not 'q4_0'");
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

// The chat's flags outside a chat, and the modes -cnv excludes.
TEST(PiRunCliTest, ChatFlagsThatDoNotFitAreOneLine) {
  ExpectOneLineError(PiRun({"-m", Stories(), "--system", "Be kind."}), "--system needs -cnv");
  ExpectOneLineError(PiRun({"-m", Stories(), "-sys", "Be kind."}), "--system needs -cnv");
  ExpectOneLineError(PiRun({"-m", Stories(), "--chat-template", "chatml"}),
                     "--chat-template needs -cnv");
  ExpectOneLineError(PiRun({"-m", Stories(), "-cnv", "-i"}), "-cnv and -i cannot be combined");
  ExpectOneLineError(PiRun({"-m", Stories(), "-cnv", "--perplexity", Stories()}),
                     "-cnv and --perplexity cannot be combined");
  ExpectOneLineError(PiRun({"-m", Stories(), "-cnv", "--truncate"}),
                     "--truncate does not apply to -cnv");
  ExpectOneLineError(
      PiRun({"-m", Stories(), "-cnv", "--chat-template", "jinja"}),
      "--chat-template: unknown chat template 'jinja' (known: llama2, chatml, llama3)");
  // A first message that leaves no room for a reply.
  ExpectOneLineError(PiRun({"-m", Stories(), "-cnv", "-c", "16", "-p", "Hello there"}),
                     "leaves no room for a reply in the context of 16 tokens");
}

TEST(PiRunCliTest, ModelProblemsAreOneLine) {
  const std::string no_tokenizer = test::ScratchDir() + "/no_tokenizer.pi";
  ASSERT_TRUE(test::RewriteModel(Stories(), no_tokenizer, [](Metadata& m) {
                m.Erase("tokenizer.model");
              }).ok());
  ExpectOneLineError(PiRun({"-m", no_tokenizer}), "no tokenizer");

  const std::string gptj = test::ScratchDir() + "/gptj.pi";
  ASSERT_TRUE(test::RewriteModel(Stories(), gptj, [](Metadata& m) {
                m.SetString("general.architecture", "gptj");
              }).ok());
  ExpectOneLineError(PiRun({"-m", gptj}), "unknown architecture 'gptj'");

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
