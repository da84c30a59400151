// The stepping Generator and Generate() over it: the same greedy tokens as one Evaluate of the
// prompt, the prompt in ceil(n / batch) steps, and each way a generation ends (max_tokens, an end
// token, EOS, a full context, the caller), and the context shift that goes on past a full one.
#include "runtime/exec/generator.h"

#include <algorithm>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/runtime/runtime_harness.h"
#include "tests/runtime/test_models.h"

namespace pinfer {
namespace {

using test::BundledModel;

class GeneratorTest : public ::testing::Test {
 protected:
  static std::string Path() { return test::ConvertedModel(BundledModel::kStories260K); }

  static SamplerParams Greedy() {
    SamplerParams params;
    params.temperature = 0.0f;
    return params;
  }

  // Greedy tokens after `prompt` in a fresh session of `l`.
  static std::vector<int32_t> GreedyTokens(test::Loaded& l, const std::vector<int32_t>& prompt,
                                           int64_t max_tokens) {
    l.session->Reset();
    Sampler sampler(Greedy());
    GenerationOptions options;
    options.max_tokens = max_tokens;
    absl::StatusOr<GenerationResult> result =
        Generate(*l.session, sampler, *l.tokenizer, prompt, options, nullptr);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? result->tokens : std::vector<int32_t>();
  }

  // The index of the first token of `tokens` after the first that does not appear before it.
  static size_t FirstNewToken(const std::vector<int32_t>& tokens) {
    size_t at = 1;
    while (at < tokens.size() &&
           std::find(tokens.begin(), tokens.begin() + at, tokens[at]) != tokens.begin() + at) {
      ++at;
    }
    return at;
  }

  // The greedy 8-token continuation of `prompt` (`free_run`) and the index of its first token that
  // the run has not produced before (`at`): a token to end on, or to name as EOS.
  static void FreeRun(test::Loaded& l, const std::vector<int32_t>& prompt,
                      std::vector<int32_t>& free_run, size_t& at) {
    free_run = GreedyTokens(l, prompt, 8);
    ASSERT_EQ(free_run.size(), 8u);
    at = FirstNewToken(free_run);
    ASSERT_LT(at, free_run.size());
  }

  // Steps `generator` to its end; returns the reported tokens, and the steps taken in `steps`.
  static std::vector<int32_t> RunToEnd(Generator& generator, int64_t* steps = nullptr) {
    std::vector<int32_t> tokens;
    int64_t n = 0;
    while (generator.running()) {
      absl::StatusOr<GenerationStep> step = generator.Step();
      EXPECT_TRUE(step.ok()) << step.status();
      if (!step.ok()) break;
      ++n;
      if (step->token >= 0) tokens.push_back(step->token);
    }
    if (steps != nullptr) *steps = n;
    return tokens;
  }
};

TEST_F(GeneratorTest, StepsGiveGeneratesTokensWithThePromptInChunks) {
  test::Loaded l = test::LoadForTest(Path());
  ASSERT_NE(l.session, nullptr);
  const std::vector<int32_t> prompt =
      l.tokenizer->Encode("Once upon a time there was a big dog who liked to run in the sun.");
  ASSERT_GT(prompt.size(), 15u);
  constexpr int64_t kChunk = 7;
  constexpr int64_t kTokens = 24;
  const int64_t chunks = (static_cast<int64_t>(prompt.size()) + kChunk - 1) / kChunk;

  Sampler reference_sampler(Greedy());
  GenerationOptions options;
  options.max_tokens = kTokens;
  const absl::StatusOr<GenerationResult> expected =
      Generate(*l.session, reference_sampler, *l.tokenizer, prompt, options, nullptr);
  ASSERT_TRUE(expected.ok()) << expected.status();
  ASSERT_EQ(expected->tokens.size(), static_cast<size_t>(kTokens));
  EXPECT_EQ(expected->prompt.tokens, static_cast<int64_t>(prompt.size()));
  EXPECT_EQ(expected->decode.tokens, kTokens - 1);  // the last one is left pending
  EXPECT_EQ(expected->pending_token, expected->tokens.back());

  std::unique_ptr<Session> session = *Session::Create(*l.executor);
  Sampler sampler(Greedy());
  options.prompt_batch = kChunk;
  Generator generator(*session, sampler, *l.tokenizer, options);
  ASSERT_TRUE(generator.Start(prompt).ok());
  // The prompt's chunks but the last report no token.
  for (int64_t i = 0; i + 1 < chunks; ++i) {
    const absl::StatusOr<GenerationStep> step = generator.Step();
    ASSERT_TRUE(step.ok()) << step.status();
    EXPECT_EQ(step->prompt_tokens, kChunk);
    EXPECT_EQ(step->token, -1);
    EXPECT_EQ(step->end, GenerationEnd::kRunning);
  }
  const absl::StatusOr<GenerationStep> last_chunk = generator.Step();
  ASSERT_TRUE(last_chunk.ok()) << last_chunk.status();
  EXPECT_EQ(last_chunk->prompt_tokens, static_cast<int64_t>(prompt.size()) - (chunks - 1) * kChunk);
  EXPECT_EQ(last_chunk->token, expected->tokens.front());
  int64_t steps = 0;
  std::vector<int32_t> tokens = RunToEnd(generator, &steps);
  tokens.insert(tokens.begin(), last_chunk->token);
  EXPECT_EQ(tokens, expected->tokens);
  EXPECT_EQ(steps, kTokens - 1);  // one forward pass per token after the first
  EXPECT_EQ(generator.end(), GenerationEnd::kMaxTokens);
  EXPECT_EQ(generator.generated(), kTokens);
  EXPECT_EQ(generator.pending_token(), tokens.back());
  EXPECT_EQ(generator.prompt_stats().passes, chunks);
  EXPECT_EQ(generator.prompt_stats().tokens, static_cast<int64_t>(prompt.size()));
  EXPECT_EQ(generator.decode_stats().passes, kTokens - 1);
  EXPECT_EQ(session->position(), static_cast<int64_t>(prompt.size()) + kTokens - 1);
  EXPECT_EQ(session->tokens(), l.session->tokens());
  EXPECT_FALSE(generator.Step().ok());  // over
}

TEST_F(GeneratorTest, APassAtATimeGivesTheLogitsOfOneEvaluate) {
  // An executor batch of 5 and prompt chunks of 5: the passes are the ones the session makes when
  // it evaluates the whole prompt, so the logits are the same to the bit.
  test::Loaded l = test::LoadForTest(Path(), 0, 5);
  ASSERT_NE(l.session, nullptr);
  const std::vector<int32_t> prompt = l.tokenizer->Encode("Lily and Tom went to the park");
  ASSERT_GT(prompt.size(), 5u);
  const absl::StatusOr<std::span<const float>> whole = l.session->Evaluate(prompt, Logits::kLast);
  ASSERT_TRUE(whole.ok()) << whole.status();
  const std::vector<float> expected(whole->begin(), whole->end());

  std::unique_ptr<Session> session = *Session::Create(*l.executor);
  Sampler sampler(Greedy());
  GenerationOptions options;
  options.max_tokens = 2;
  options.prompt_batch = 5;
  Generator generator(*session, sampler, *l.tokenizer, options);
  ASSERT_TRUE(generator.Start(prompt).ok());
  std::vector<float> last;
  int64_t passes = 0;
  while (generator.running()) {
    const Generator::Pass pass = generator.NextPass();
    ASSERT_FALSE(pass.tokens.empty());
    const absl::StatusOr<std::span<const float>> logits =
        session->Evaluate(pass.tokens, pass.logits);
    ASSERT_TRUE(logits.ok()) << logits.status();
    if (last.empty() && pass.logits == Logits::kLast) last.assign(logits->begin(), logits->end());
    generator.Consume(pass, *logits, ForwardStats{});
    ++passes;
  }
  EXPECT_EQ(last, expected);
  EXPECT_EQ(passes, static_cast<int64_t>((prompt.size() + 4) / 5) + 1);
  EXPECT_TRUE(generator.NextPass().tokens.empty());
}

TEST_F(GeneratorTest, EndTokensEndItUnreported) {
  test::Loaded l = test::LoadForTest(Path());
  ASSERT_NE(l.session, nullptr);
  const std::vector<int32_t> prompt = l.tokenizer->Encode("Once upon a time");
  std::vector<int32_t> free_run;
  size_t at = 0;
  ASSERT_NO_FATAL_FAILURE(FreeRun(l, prompt, free_run, at));

  l.session->Reset();
  Sampler sampler(Greedy());
  GenerationOptions options;
  options.max_tokens = 8;
  options.end_tokens = {free_run[at]};
  const absl::StatusOr<GenerationResult> ended =
      Generate(*l.session, sampler, *l.tokenizer, prompt, options, nullptr);
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_EQ(ended->tokens, std::vector<int32_t>(free_run.begin(), free_run.begin() + at));
  EXPECT_TRUE(ended->hit_eos);
  EXPECT_FALSE(ended->context_full);
  EXPECT_EQ(ended->pending_token, -1);  // everything reported was evaluated
  EXPECT_EQ(l.session->position(), static_cast<int64_t>(prompt.size() + at));
}

TEST_F(GeneratorTest, EosEndsItUnlessTold) {
  // stories260K never chooses its EOS (its stories end with BOS), so a copy names as EOS a token
  // that the greedy continuation chooses.
  test::Loaded original = test::LoadForTest(Path());
  ASSERT_NE(original.session, nullptr);
  const std::vector<int32_t> prompt = original.tokenizer->Encode("Once upon a time");
  std::vector<int32_t> free_run;
  size_t at = 0;
  ASSERT_NO_FATAL_FAILURE(FreeRun(original, prompt, free_run, at));
  const std::string path = test::ScratchDir() + "/generator_eos.pi";
  ASSERT_TRUE(test::RewriteModel(Path(), path, [&](Metadata& m) {
                m.SetInt("tokenizer.eos_id", free_run[at]);
              }).ok());
  test::Loaded l = test::LoadForTest(path);
  ASSERT_NE(l.session, nullptr);
  ASSERT_TRUE(l.tokenizer->IsEndOfGeneration(free_run[at]));

  Sampler sampler(Greedy());
  const absl::StatusOr<GenerationResult> until_eos =
      Generate(*l.session, sampler, *l.tokenizer, prompt, GenerationOptions{}, nullptr);
  ASSERT_TRUE(until_eos.ok()) << until_eos.status();
  EXPECT_TRUE(until_eos->hit_eos);
  EXPECT_FALSE(until_eos->context_full);
  EXPECT_EQ(until_eos->tokens, std::vector<int32_t>(free_run.begin(), free_run.begin() + at));
  EXPECT_EQ(until_eos->pending_token, -1);

  // Without stop_at_eos the EOS is a token like the others.
  l.session->Reset();
  Sampler past_sampler(Greedy());
  GenerationOptions past;
  past.stop_at_eos = false;
  past.max_tokens = 8;
  const absl::StatusOr<GenerationResult> through =
      Generate(*l.session, past_sampler, *l.tokenizer, prompt, past, nullptr);
  ASSERT_TRUE(through.ok()) << through.status();
  EXPECT_EQ(through->tokens, free_run);
  EXPECT_FALSE(through->hit_eos);
}

TEST_F(GeneratorTest, AFullContextEndsIt) {
  constexpr int64_t kContext = 16;
  test::Loaded l = test::LoadForTest(Path(), kContext);
  ASSERT_NE(l.session, nullptr);
  const std::vector<int32_t> prompt = l.tokenizer->Encode("Once upon a time");
  Sampler sampler(Greedy());
  GenerationOptions options;
  options.prompt_batch = 2;
  Generator generator(*l.session, sampler, *l.tokenizer, options);
  ASSERT_TRUE(generator.Start(prompt).ok());
  const std::vector<int32_t> tokens = RunToEnd(generator);
  EXPECT_EQ(generator.end(), GenerationEnd::kContextFull);
  EXPECT_EQ(l.session->position(), kContext);
  // Every position holds a token, and the one chosen after the last is left pending.
  EXPECT_EQ(static_cast<int64_t>(tokens.size()),
            kContext - static_cast<int64_t>(prompt.size()) + 1);
  EXPECT_EQ(generator.pending_token(), tokens.back());

  l.session->Reset();
  Sampler again(Greedy());
  const absl::StatusOr<GenerationResult> result =
      Generate(*l.session, again, *l.tokenizer, prompt, GenerationOptions{}, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->context_full);
  EXPECT_FALSE(result->hit_eos);
  EXPECT_EQ(result->tokens, tokens);
  EXPECT_EQ(result->pending_token, tokens.back());
}

// With context_shift a full context keeps the first keep_tokens tokens, drops half of the rest
// and goes on: the tokens are those of a session shifted by hand at the same points, and up to
// the first shift those of the generation that stops there.
TEST_F(GeneratorTest, AContextShiftGoesOnPastAFullContext) {
  constexpr int64_t kContext = 16, kTokens = 40;
  test::Loaded l = test::LoadForTest(Path(), kContext);
  test::Loaded by_hand = test::LoadForTest(Path(), kContext);
  ASSERT_NE(by_hand.session, nullptr);
  const std::vector<int32_t> prompt = l.tokenizer->Encode("Once upon a time");
  const int64_t p = static_cast<int64_t>(prompt.size());
  Sampler sampler(Greedy());
  GenerationOptions options;
  options.prompt_batch = 2;
  options.max_tokens = kTokens;
  options.context_shift = true;
  options.keep_tokens = 1;
  std::vector<ContextShift> shifts;
  options.on_context_shift = [&](const ContextShift& shift) { shifts.push_back(shift); };
  Generator generator(*l.session, sampler, *l.tokenizer, options);
  ASSERT_TRUE(generator.Start(prompt).ok());
  const std::vector<int32_t> tokens = RunToEnd(generator);
  EXPECT_EQ(generator.end(), GenerationEnd::kMaxTokens);
  ASSERT_EQ(static_cast<int64_t>(tokens.size()), kTokens);
  // p + 39 tokens evaluated; full at 16, then every 7 more: BOS kept, (16 - 1) / 2 = 7 dropped.
  const int64_t evaluated = p + kTokens - 1;
  const int64_t expected_shifts = (evaluated - kContext - 1) / 7 + 1;
  EXPECT_EQ(generator.context_shifts(), expected_shifts);
  ASSERT_EQ(static_cast<int64_t>(shifts.size()), expected_shifts);
  for (const ContextShift& shift : shifts) {
    EXPECT_EQ(shift.kept, 1);
    EXPECT_EQ(shift.discarded, 7);
    EXPECT_EQ(shift.position, 9);
  }
  EXPECT_EQ(l.session->position(), evaluated - 7 * expected_shifts);

  // The same by hand: greedy tokens, a shift whenever the next token does not fit.
  absl::StatusOr<std::span<const float>> logits = by_hand.session->Evaluate(prompt);
  ASSERT_TRUE(logits.ok()) << logits.status();
  std::vector<int32_t> expected;
  while (true) {
    const int32_t token =
        static_cast<int32_t>(std::max_element(logits->begin(), logits->end()) - logits->begin());
    expected.push_back(token);
    if (static_cast<int64_t>(expected.size()) == kTokens) break;
    if (by_hand.session->position() == kContext) {
      ASSERT_TRUE(by_hand.session->ShiftContext(1, 7).ok());
    }
    logits = by_hand.session->Evaluate(std::span<const int32_t>(&token, 1));
    ASSERT_TRUE(logits.ok()) << logits.status();
  }
  EXPECT_EQ(tokens, expected);
  EXPECT_EQ(l.session->tokens(), by_hand.session->tokens());

  // Without the shift the generation stops at the full context, with the same tokens until then.
  l.session->Reset();
  Sampler stop_sampler(Greedy());
  GenerationOptions stop;
  stop.max_tokens = kTokens;
  const absl::StatusOr<GenerationResult> stopped =
      Generate(*l.session, stop_sampler, *l.tokenizer, prompt, stop, nullptr);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_TRUE(stopped->context_full);
  EXPECT_EQ(stopped->context_shifts, 0);
  ASSERT_EQ(static_cast<int64_t>(stopped->tokens.size()), kContext - p + 1);
  EXPECT_EQ(stopped->tokens,
            std::vector<int32_t>(tokens.begin(), tokens.begin() + (kContext - p + 1)));

  // keep_tokens that leave nothing to drop: the context is full as without the shift.
  l.session->Reset();
  Sampler keep_sampler(Greedy());
  GenerationOptions keep_all = options;
  keep_all.keep_tokens = kContext;
  shifts.clear();
  const absl::StatusOr<GenerationResult> kept =
      Generate(*l.session, keep_sampler, *l.tokenizer, prompt, keep_all, nullptr);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_TRUE(kept->context_full);
  EXPECT_EQ(kept->context_shifts, 0);
  EXPECT_TRUE(shifts.empty());
  EXPECT_EQ(kept->tokens, stopped->tokens);
}

// A next turn that does not fit: refused without the shift; with it, the session makes room for
// the whole prompt (half of what follows the kept tokens, or more when the prompt needs it).
TEST_F(GeneratorTest, AContextShiftMakesRoomForTheNextPrompt) {
  test::Loaded l = test::LoadForTest(Path());
  ASSERT_NE(l.session, nullptr);
  const std::vector<int32_t> first = l.tokenizer->Encode("Once upon a time there was a dog");
  const std::vector<int32_t> next = l.tokenizer->Encode(" and a cat", false);
  const int64_t n_first = static_cast<int64_t>(first.size());
  const int64_t n_next = static_cast<int64_t>(next.size());
  // The first turn fits, the next one does not.
  const int64_t context = n_first + 2;
  ASSERT_GT(n_next, 2);
  absl::StatusOr<std::unique_ptr<Session>> created =
      Session::Create(*l.executor, SessionOptions{context});
  ASSERT_TRUE(created.ok()) << created.status();
  l.session = *std::move(created);
  ASSERT_TRUE(l.session->Evaluate(first).ok());

  Sampler sampler(Greedy());
  GenerationOptions options;
  options.max_tokens = 2;
  Generator refused(*l.session, sampler, *l.tokenizer, options);
  EXPECT_EQ(refused.Start(next).code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(l.session->tokens(), first);

  options.context_shift = true;
  options.keep_tokens = 1;
  std::vector<ContextShift> shifts;
  options.on_context_shift = [&](const ContextShift& shift) { shifts.push_back(shift); };
  Generator generator(*l.session, sampler, *l.tokenizer, options);
  ASSERT_TRUE(generator.Start(next).ok());
  ASSERT_EQ(shifts.size(), 1u);
  const int64_t discard = std::max((n_first - 1) / 2, n_first + n_next - context);
  EXPECT_EQ(shifts[0].kept, 1);
  EXPECT_EQ(shifts[0].discarded, discard);
  EXPECT_EQ(l.session->position(), n_first - discard);
  EXPECT_EQ(generator.context_shifts(), 1);
  ASSERT_LT(n_first - discard + n_next, context);  // the generated token fits: no second shift
  RunToEnd(generator);
  EXPECT_EQ(shifts.size(), 1u);
  std::vector<int32_t> expected(first.begin(), first.begin() + 1);
  expected.insert(expected.end(), first.begin() + 1 + discard, first.end());
  expected.insert(expected.end(), next.begin(), next.end());
  ASSERT_GE(l.session->tokens().size(), expected.size());
  EXPECT_EQ(std::vector<int32_t>(l.session->tokens().begin(),
                                 l.session->tokens().begin() + expected.size()),
            expected);

  // A prompt that the kept tokens leave no room for is refused, changing nothing.
  const std::vector<int32_t> too_long(context, l.tokenizer->bos());
  const std::vector<int32_t> before = l.session->tokens();
  Generator again(*l.session, sampler, *l.tokenizer, options);
  EXPECT_EQ(again.Start(too_long).code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(l.session->tokens(), before);
}

TEST_F(GeneratorTest, TheCallerStopsItAndTheNextTurnContinues) {
  test::Loaded l = test::LoadForTest(Path());
  ASSERT_NE(l.session, nullptr);
  const std::vector<int32_t> prompt = l.tokenizer->Encode("Once upon a time");
  Sampler sampler(Greedy());
  int calls = 0;
  const absl::StatusOr<GenerationResult> stopped =
      Generate(*l.session, sampler, *l.tokenizer, prompt, GenerationOptions{},
               [&](int32_t) { return ++calls < 3; });
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_TRUE(stopped->stopped_by_caller);
  EXPECT_FALSE(stopped->hit_eos || stopped->context_full);
  ASSERT_EQ(stopped->tokens.size(), 3u);
  EXPECT_EQ(stopped->pending_token, stopped->tokens.back());
  EXPECT_EQ(l.session->position(), static_cast<int64_t>(prompt.size()) + 2);

  // The caller's word counts on the step that reaches max_tokens too.
  l.session->Reset();
  Sampler last_sampler(Greedy());
  GenerationOptions one;
  one.max_tokens = 1;
  const absl::StatusOr<GenerationResult> refused =
      Generate(*l.session, last_sampler, *l.tokenizer, prompt, one, [](int32_t) { return false; });
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_TRUE(refused->stopped_by_caller);

  // Stop() on a Generator; then a next turn starts at the session's position with the pending
  // token, and goes on as if the generation had not stopped.
  l.session->Reset();
  Sampler turn_sampler(Greedy());
  GenerationOptions options;
  options.max_tokens = 6;
  Generator generator(*l.session, turn_sampler, *l.tokenizer, options);
  ASSERT_TRUE(generator.Start(prompt).ok());
  std::vector<int32_t> tokens;
  for (int i = 0; i < 2; ++i) {
    const absl::StatusOr<GenerationStep> step = generator.Step();
    ASSERT_TRUE(step.ok()) << step.status();
    tokens.push_back(step->token);
  }
  generator.Stop();
  EXPECT_FALSE(generator.running());
  EXPECT_EQ(generator.end(), GenerationEnd::kStoppedByCaller);
  EXPECT_EQ(generator.Step().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(generator.pending_token(), tokens.back());
  const int32_t pending = generator.pending_token();
  ASSERT_TRUE(generator.Start(std::span<const int32_t>(&pending, 1)).ok());
  const std::vector<int32_t> rest = RunToEnd(generator);
  tokens.insert(tokens.end(), rest.begin(), rest.end());
  EXPECT_EQ(tokens.size(), 8u);
  EXPECT_EQ(std::vector<int32_t>(tokens.begin(), tokens.begin() + 3), stopped->tokens);
}

TEST_F(GeneratorTest, StartRefusesWhatCannotRun) {
  test::Loaded l = test::LoadForTest(Path(), 8);
  ASSERT_NE(l.session, nullptr);
  Sampler sampler(Greedy());
  Generator generator(*l.session, sampler, *l.tokenizer, GenerationOptions{});
  EXPECT_EQ(generator.Start({}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(generator.running());
  const std::vector<int32_t> nine(9, l.tokenizer->bos());
  EXPECT_EQ(generator.Start(nine).code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(l.session->position(), 0);
  const std::vector<int32_t> prompt = l.tokenizer->Encode("Once upon a time");
  ASSERT_TRUE(generator.Start(prompt).ok());
  EXPECT_EQ(generator.Start(prompt).code(), absl::StatusCode::kFailedPrecondition);

  // No token budget: the prompt is evaluated and nothing is generated.
  l.session->Reset();
  Sampler none_sampler(Greedy());
  GenerationOptions none;
  none.max_tokens = 0;
  Generator nothing(*l.session, none_sampler, *l.tokenizer, none);
  ASSERT_TRUE(nothing.Start(prompt).ok());
  const absl::StatusOr<GenerationStep> step = nothing.Step();
  ASSERT_TRUE(step.ok()) << step.status();
  EXPECT_EQ(step->token, -1);
  EXPECT_EQ(step->end, GenerationEnd::kMaxTokens);
  EXPECT_EQ(nothing.pending_token(), -1);
}

}  // namespace
}  // namespace pinfer
