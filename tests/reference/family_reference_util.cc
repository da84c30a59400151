#include "tests/reference/family_reference_util.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <span>
#include <vector>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/session.h"
#include "runtime/model/model.h"
#include "tests/convert/test_util.h"

namespace pinfer::testing {
namespace {

constexpr int kGreedyTokens = 12;

int32_t ArgMax(std::span<const float> row) {
  return static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
}

// The reference's logits of each sequence (each from position 0) in one torch_reference run (it
// loads LibTorch once): their rows concatenated, [total tokens, vocab].
std::vector<float> Reference(const std::string& hf_dir,
                             const std::vector<std::vector<int32_t>>& sequences,
                             const std::string& out) {
  std::vector<std::string> args = {"--model-dir", hf_dir, "--out", out};
  for (const std::vector<int32_t>& tokens : sequences) {
    args.push_back("--tokens");
    args.push_back(absl::StrJoin(tokens, ","));
  }
  const ToolResult r = RunTool("torch_reference", args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const std::vector<uint8_t> bytes = ReadFileBytes(out);
  std::vector<float> logits(bytes.size() / sizeof(float));
  std::memcpy(logits.data(), bytes.data(), logits.size() * sizeof(float));
  return logits;
}

// Every row of `got` ([rows, vocab]) against the reference's rows [first, first + rows); returns
// the largest difference relative to its row's largest |logit|.
double ExpectRowsNear(std::span<const float> got, const std::vector<float>& want, int64_t first,
                      int64_t vocab, const std::string& what) {
  const int64_t rows = static_cast<int64_t>(got.size()) / vocab;
  EXPECT_GE(static_cast<int64_t>(want.size()), (first + rows) * vocab) << what;
  if (static_cast<int64_t>(want.size()) < (first + rows) * vocab) return 1.0;
  double worst_relative = 0.0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* w = want.data() + (first + r) * vocab;
    double scale = 1.0, worst = 0.0;
    for (int64_t t = 0; t < vocab; ++t) scale = std::max(scale, double(std::fabs(w[t])));
    for (int64_t t = 0; t < vocab; ++t) {
      worst = std::max(worst, std::fabs(double(got[r * vocab + t]) - w[t]));
    }
    EXPECT_LE(worst, kFamilyTolerance * scale) << what << ", position " << first + r;
    worst_relative = std::max(worst_relative, worst / scale);
  }
  return worst_relative;
}

}  // namespace

void CheckFamilyAgainstReference(const std::string& name, const std::string& hf_dir,
                                 const std::string& pi_path) {
  const ToolResult convert = RunTool("pi-convert", {hf_dir, "-o", pi_path, "-q"});
  ASSERT_EQ(convert.exit_code, 0) << convert.err;
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(pi_path);
  ASSERT_TRUE(model.ok()) << model.status();
  const int64_t vocab = (*model)->config().vocab_size;
  ExecutorOptions options;
  options.batch_size = 16;  // the 40-token prompt runs in three passes
  Executor executor(**model, options);
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> token(3, static_cast<int32_t>(vocab) - 1);
  struct Run {
    int64_t length = 0;
    std::vector<int32_t> all;    // the prompt, then the continuation but its last token
    std::vector<int32_t> chain;  // the greedy tokens
    std::vector<float> prompt_logits, decode_logits;
  };
  std::vector<Run> runs;
  for (const int64_t length : {1, 7, 40}) {
    Run& run = runs.emplace_back();
    run.length = length;
    std::vector<int32_t> prompt(static_cast<size_t>(length));
    for (int32_t& t : prompt) t = token(rng);
    absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(
        executor, SessionOptions{.context_length = 64, .cache_type = DType::kF32});
    ASSERT_TRUE(session.ok()) << session.status();
    absl::StatusOr<std::span<const float>> logits = (*session)->Evaluate(prompt, Logits::kAll);
    ASSERT_TRUE(logits.ok()) << logits.status();
    run.prompt_logits.assign(logits->begin(), logits->end());
    run.chain = {ArgMax(std::span(run.prompt_logits).last(vocab))};
    while (static_cast<int>(run.chain.size()) < kGreedyTokens) {
      logits = (*session)->Evaluate(std::span(&run.chain.back(), 1), Logits::kLast);
      ASSERT_TRUE(logits.ok()) << logits.status();
      run.decode_logits.insert(run.decode_logits.end(), logits->begin(), logits->end());
      run.chain.push_back(ArgMax(*logits));
    }
    run.all = prompt;
    run.all.insert(run.all.end(), run.chain.begin(), run.chain.end() - 1);
  }
  std::vector<std::vector<int32_t>> sequences;
  for (const Run& run : runs) sequences.push_back(run.all);
  const std::vector<float> want = Reference(hf_dir, sequences, pi_path + ".reference.f32");
  int64_t first = 0;  // the run's first row in the reference's output
  double worst = 0.0;
  for (const Run& run : runs) {
    const std::string what = name + ", a prompt of " + std::to_string(run.length);
    worst = std::max(worst,
                     ExpectRowsNear(run.prompt_logits, want, first, vocab, what + " (batched)"));
    worst = std::max(worst, ExpectRowsNear(run.decode_logits, want, first + run.length, vocab,
                                           what + " (decode)"));
    std::vector<int32_t> want_chain;
    for (int64_t p = run.length - 1; p < static_cast<int64_t>(run.all.size()); ++p) {
      if ((first + p + 1) * vocab > static_cast<int64_t>(want.size())) break;
      want_chain.push_back(ArgMax(std::span(want).subspan((first + p) * vocab, vocab)));
    }
    EXPECT_EQ(run.chain, want_chain) << what << ": the greedy chain";
    first += static_cast<int64_t>(run.all.size());
  }
  std::printf("%s: largest difference %.2g of the row's largest |logit| (tolerance %.0e)\n",
              name.c_str(), worst, kFamilyTolerance);
}

}  // namespace pinfer::testing
