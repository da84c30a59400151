#include "tests/reference/reference_check.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/session.h"
#include "runtime/model/model.h"
#include "tests/convert/gguf_model.h"
#include "tests/convert/test_util.h"
#include "tools/convert/source_reader.h"

namespace pinfer::testing {
namespace {

int32_t ArgMax(std::span<const float> row) {
  return static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
}

// The reference's logits of each sequence (each from position 0), in one torch_reference run:
// their rows concatenated, [total tokens, vocab].
std::vector<float> ReferenceLogits(const std::string& hf_dir,
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
double ExpectRowsNear(std::span<const float> got, const std::vector<float>& reference,
                      int64_t first, int64_t vocab, double tolerance, const std::string& what) {
  const int64_t rows = static_cast<int64_t>(got.size()) / vocab;
  double worst_relative = 0.0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* want = reference.data() + (first + r) * vocab;
    double scale = 1.0, worst = 0.0;
    for (int64_t t = 0; t < vocab; ++t) scale = std::max(scale, double(std::fabs(want[t])));
    for (int64_t t = 0; t < vocab; ++t) {
      worst = std::max(worst, std::fabs(double(got[r * vocab + t]) - want[t]));
    }
    EXPECT_LE(worst, tolerance * scale) << what << ", position " << first + r;
    worst_relative = std::max(worst_relative, worst / scale);
  }
  return worst_relative;
}

}  // namespace

// Converts `spec`'s checkpoint and checks pinfer against the reference; `converted` (if given)
// gets the converted model's path. With `via_gguf`, pi-convert reads a GGUF written from the
// checkpoint in llama.cpp's layout (tests/convert/gguf_model.h: interleaved q/k, rope_freqs).
void CheckAgainstReference(const std::string& name, const HfSpec& spec, const Plan& plan,
                           std::string* converted, bool via_gguf) {
  const std::string dir = ScratchDir("reference_" + name);
  const std::string hf = dir + "/hf", pi = dir + "/model.pi";
  const HfModel source = WriteHfModel(hf, spec);
  std::string input = hf;
  if (via_gguf) {
    absl::StatusOr<SourceModel> model = ReadSource(hf, SourceOptions{});
    ASSERT_TRUE(model.ok()) << model.status();
    input = dir + "/model.gguf";
    WriteFileBytes(input, BuildLlamaGguf(*model));
  }
  if (converted != nullptr) *converted = pi;
  Plan seeded = plan;
  if (seeded.seed == 0) seeded.seed = spec.seed;
  CheckConvertedAgainstReference(name, hf, input, pi, seeded);
}

void CheckConvertedAgainstReference(const std::string& name, const std::string& hf_dir,
                                    const std::string& input, const std::string& pi,
                                    const Plan& plan) {
  const ToolResult convert = RunTool("pi-convert", {input, "-o", pi, "-q"});
  ASSERT_EQ(convert.exit_code, 0) << convert.err;
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(pi);
  ASSERT_TRUE(model.ok()) << model.status();
  const int64_t vocab = (*model)->config().vocab_size;
  ExecutorOptions options;
  options.batch_size = 16;  // the 40-token prompt runs in three passes
  Executor executor(**model, options);

  // pinfer first, for every prompt: its prompt logits (one batched evaluation), then the greedy
  // continuation one token a pass, keeping the logits of each decode pass.
  struct Run {
    int64_t length = 0;
    std::vector<int32_t> tokens;  // the prompt, then the continuation but its last token
    std::vector<int32_t> chain;   // the greedy tokens
    std::vector<float> prompt_logits, decode_logits;
  };
  std::vector<Run> runs;
  std::mt19937 rng(plan.seed);
  std::uniform_int_distribution<int32_t> token(3, static_cast<int32_t>(vocab) - 1);
  for (int64_t length : plan.lengths) {
    Run& run = runs.emplace_back();
    run.length = length;
    std::vector<int32_t> prompt(static_cast<size_t>(length));
    for (int32_t& t : prompt) t = token(rng);
    absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(
        executor, SessionOptions{.context_length = plan.context, .cache_type = DType::kF32});
    ASSERT_TRUE(session.ok()) << session.status();
    absl::StatusOr<std::span<const float>> logits = (*session)->Evaluate(prompt, Logits::kAll);
    ASSERT_TRUE(logits.ok()) << logits.status();
    run.prompt_logits.assign(logits->begin(), logits->end());
    run.chain = {ArgMax(std::span(run.prompt_logits).last(vocab))};
    while (static_cast<int64_t>(run.chain.size()) < plan.greedy) {
      logits = (*session)->Evaluate(std::span(&run.chain.back(), 1), Logits::kLast);
      ASSERT_TRUE(logits.ok()) << logits.status();
      run.decode_logits.insert(run.decode_logits.end(), logits->begin(), logits->end());
      run.chain.push_back(ArgMax(*logits));
    }
    run.tokens = prompt;
    run.tokens.insert(run.tokens.end(), run.chain.begin(), run.chain.end() - 1);
  }

  std::vector<std::vector<int32_t>> sequences;
  size_t rows = 0;
  for (const Run& run : runs) {
    sequences.push_back(run.tokens);
    rows += run.tokens.size();
  }
  const std::vector<float> all = ReferenceLogits(hf_dir, sequences, pi + ".reference.f32");
  ASSERT_EQ(all.size(), rows * static_cast<size_t>(vocab));
  size_t offset = 0;
  double worst = 0.0;
  for (const Run& run : runs) {
    SCOPED_TRACE(name + ", a prompt of " + std::to_string(run.length) + " tokens");
    const std::vector<float> reference(all.begin() + offset * vocab,
                                       all.begin() + (offset + run.tokens.size()) * vocab);
    offset += run.tokens.size();
    worst = std::max(worst, ExpectRowsNear(run.prompt_logits, reference, 0, vocab,
                                           plan.tolerance, "prompt (batched)"));
    worst = std::max(worst, ExpectRowsNear(run.decode_logits, reference, run.length, vocab,
                                           plan.tolerance, "decode"));
    std::vector<int32_t> reference_chain;
    for (int64_t s = 0; s < plan.greedy; ++s) {
      reference_chain.push_back(
          ArgMax(std::span(reference).subspan((run.length - 1 + s) * vocab, vocab)));
    }
    EXPECT_EQ(run.chain, reference_chain);
  }
  std::printf("%s: largest difference %.2g of the row's largest |logit| (tolerance %.0e)\n",
              name.c_str(), worst, plan.tolerance);
}

}  // namespace pinfer::testing
