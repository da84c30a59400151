// SlotScheduler over the real stories260K executor: generations equal Generate()'s, their text
// comes a piece per token, end tokens and stop sequences end them, the queue is bounded, deadlines
// and cancellations apply in the queue and in a slot, and Drain() refuses, lets finish, then cuts.
#include "runtime/app/server/slot_scheduler.h"

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/exec/generator.h"
#include "tests/server/server_harness.h"

namespace pinfer {
namespace {

using std::chrono::milliseconds;

class SlotSchedulerTest : public ::testing::Test {
 protected:
  // `hold`: SchedulerOptions::hold (a HoldPoint's), or none.
  std::unique_ptr<SlotScheduler> Make(int parallel, int queue_length, int64_t context = 0,
                                      test::HoldPoint* hold = nullptr) {
    LoadedRuntime& rt = test::StoriesRuntime();
    SessionOptions session;
    session.context_length = context;
    SchedulerOptions options;
    options.parallel = parallel;
    options.queue_length = queue_length;
    if (hold != nullptr) options.hold = hold->Hook();
    return *SlotScheduler::Create(*rt.executor, *rt.tokenizer, session, options);
  }
  const Tokenizer& tokenizer() { return *test::StoriesRuntime().tokenizer; }

  GenerationRequest Greedy(const std::string& prompt, int64_t max_tokens) {
    return test::GreedyRequest(tokenizer().Encode(prompt), max_tokens);
  }

  // Generate()'s tokens for `request` on a session of its own: the reference.
  std::vector<int32_t> Reference(const GenerationRequest& request) {
    return test::GenerateAlone(test::StoriesRuntime(), request);
  }

  // Waits for the end; returns the final progress with all the pieces.
  static Generation::Progress Finish(Generation& g) { return test::WaitToTheEnd(g); }
};

TEST_F(SlotSchedulerTest, AGenerationEqualsGenerate) {
  const GenerationRequest request = Greedy("Once upon a time", 40);
  const std::vector<int32_t> expected = Reference(request);
  std::unique_ptr<SlotScheduler> scheduler = Make(2, 4);
  std::shared_ptr<Generation> g = *scheduler->Submit(request);
  const Generation::Progress p = Finish(*g);
  EXPECT_TRUE(p.status.ok()) << p.status;
  EXPECT_EQ(p.Text(), tokenizer().Decode(expected));
  EXPECT_EQ(p.finish_reason, FinishReason::kLength);
  EXPECT_EQ(p.completion_tokens, 40);
  EXPECT_EQ(p.prompt_tokens, static_cast<int64_t>(request.prompt.size()));
  const SchedulerStats stats = scheduler->stats();
  EXPECT_EQ(stats.finished, 1);
  EXPECT_EQ(stats.generated_tokens, 40);
  EXPECT_EQ(stats.prompt_tokens, static_cast<int64_t>(request.prompt.size()));
  EXPECT_EQ(stats.busy_slots, 0);
}

TEST_F(SlotSchedulerTest, AReaderThatLooksLateStillGetsAPiecePerToken) {
  // The waiting thread looks only once the whole generation is over: it gets each token's text as
  // a piece of its own (what a stream sends as one event each), not the text run together.
  const GenerationRequest request = Greedy("Once upon a time", 24);
  const std::vector<int32_t> expected = Reference(request);
  std::unique_ptr<SlotScheduler> scheduler = Make(1, 0);
  std::shared_ptr<Generation> g = *scheduler->Submit(request);
  for (int i = 0; i < 20000 && scheduler->stats().finished == 0; ++i) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  ASSERT_EQ(scheduler->stats().finished, 1);
  const Generation::Progress p = g->Wait(milliseconds(0));
  EXPECT_EQ(p.phase, Generation::Phase::kFinished);
  ASSERT_EQ(p.pieces.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(p.pieces[i], tokenizer().TokenToPiece(expected[i])) << i;
  }
  // A stop sequence's possible start is held back and comes with the piece of the token that
  // releases it: with the stop sequence "Lily X", " Lily" releases " " (holding "Lily"), then "."
  // releases "Lily.".
  std::vector<std::string> pieces;
  for (const int32_t token : expected) pieces.push_back(tokenizer().TokenToPiece(token));
  size_t lily = 0;
  while (lily + 1 < pieces.size() && !(pieces[lily] == " Lily" && pieces[lily + 1] == ".")) ++lily;
  ASSERT_LT(lily + 1, pieces.size()) << ::testing::PrintToString(pieces);
  pieces[lily] = " ";
  pieces[lily + 1] = "Lily.";
  GenerationRequest stop = Greedy("Once upon a time", 24);
  stop.stop = {"Lily X"};
  std::shared_ptr<Generation> s = *scheduler->Submit(stop);
  for (int i = 0; i < 20000 && scheduler->stats().finished == 1; ++i) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  const Generation::Progress held = s->Wait(milliseconds(0));
  EXPECT_EQ(held.Text(), p.Text());
  EXPECT_EQ(held.pieces, pieces);
}

TEST_F(SlotSchedulerTest, LongPromptsAreEvaluatedInBatches) {
  // A prompt longer than the executor's batch (256), evaluated one batch per scheduler step,
  // gives the same text as Generate() evaluating it in one call.
  std::string words;
  for (int i = 0; i < 40; ++i) words += "Lily and Tom played with a ball. ";
  GenerationRequest request = Greedy(words, 8);
  ASSERT_GT(request.prompt.size(), 256u);
  ASSERT_LT(request.prompt.size(), 500u);
  LoadedRuntime& rt = test::StoriesRuntime();
  std::unique_ptr<Session> session = *Session::Create(*rt.executor);
  Sampler sampler(request.sampling);
  GenerationOptions options;
  options.max_tokens = 8;
  const GenerationResult expected =
      *Generate(*session, sampler, tokenizer(), request.prompt, options, nullptr);
  std::unique_ptr<SlotScheduler> scheduler = Make(1, 0);
  const Generation::Progress p = Finish(**scheduler->Submit(request));
  EXPECT_EQ(p.Text(), tokenizer().Decode(expected.tokens));
}

TEST_F(SlotSchedulerTest, EndTokensAndStopSequences) {
  std::unique_ptr<SlotScheduler> scheduler = Make(1, 4);
  const std::string full = Finish(**scheduler->Submit(Greedy("Once upon a time", 20))).Text();
  ASSERT_EQ(full.substr(0, 10), ", there wa");

  GenerationRequest stop = Greedy("Once upon a time", 20);
  stop.stop = {" was"};
  const Generation::Progress stopped = Finish(**scheduler->Submit(stop));
  EXPECT_EQ(stopped.Text(), ", there");
  EXPECT_EQ(stopped.finish_reason, FinishReason::kStop);

  // The first generated token as an end token: nothing is generated.
  GenerationRequest end = Greedy("Once upon a time", 20);
  LoadedRuntime& rt = test::StoriesRuntime();
  std::unique_ptr<Session> session = *Session::Create(*rt.executor);
  Sampler sampler(end.sampling);
  GenerationOptions one;
  one.max_tokens = 1;
  end.end_tokens = Generate(*session, sampler, tokenizer(), end.prompt, one, nullptr)->tokens;
  ASSERT_EQ(end.end_tokens.size(), 1u);
  const Generation::Progress ended = Finish(**scheduler->Submit(end));
  EXPECT_EQ(ended.Text(), "");
  EXPECT_EQ(ended.completion_tokens, 0);
  EXPECT_EQ(ended.finish_reason, FinishReason::kStop);
}

// The generations below that could finish before what the test waits for are held (HoldPoint):
// they end only by what the test does, however fast the machine.
TEST_F(SlotSchedulerTest, TheQueueIsBoundedAndDeadlinesApply) {
  test::HoldPoint hold(test::WithMaxTokens(4000), /*at=*/3);
  std::unique_ptr<SlotScheduler> scheduler = Make(1, 1, /*context=*/4096, &hold);
  std::shared_ptr<Generation> running = *scheduler->Submit(Greedy("Once upon a time", 4000));
  ASSERT_TRUE(hold.WaitUntilHeld());  // it holds the slot
  GenerationRequest queued = Greedy("Tom", 4);
  queued.deadline = Clock::now() + milliseconds(100);
  std::shared_ptr<Generation> waiting = *scheduler->Submit(queued);
  const absl::StatusOr<std::shared_ptr<Generation>> refused = scheduler->Submit(Greedy("Tom", 4));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  const Generation::Progress timed_out = Finish(*waiting);
  EXPECT_EQ(timed_out.status.code(), absl::StatusCode::kDeadlineExceeded) << timed_out.status;
  EXPECT_EQ(timed_out.completion_tokens, 0);

  // A queued generation that is cancelled leaves the queue; then the running one is cancelled.
  std::shared_ptr<Generation> leaving = *scheduler->Submit(Greedy("Tom", 4));
  leaving->Cancel();
  EXPECT_EQ(Finish(*leaving).status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(scheduler->stats().busy_slots, 1);
  running->Cancel();
  const Generation::Progress cancelled = Finish(*running);
  EXPECT_EQ(cancelled.status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(cancelled.completion_tokens, 3);
  EXPECT_EQ(scheduler->stats().busy_slots, 0);
  EXPECT_EQ(scheduler->stats().queued, 0);
}

TEST_F(SlotSchedulerTest, ARunningGenerationIsCutAtItsDeadline) {
  test::HoldPoint hold(test::WithMaxTokens(4000), /*at=*/3);
  std::unique_ptr<SlotScheduler> scheduler = Make(1, 0, /*context=*/4096, &hold);
  GenerationRequest request = Greedy("Once upon a time", 4000);
  request.deadline = Clock::now() + milliseconds(100);
  const Generation::Progress p = Finish(**scheduler->Submit(request));
  EXPECT_TRUE(p.status.ok());
  EXPECT_EQ(p.finish_reason, FinishReason::kLength);
  EXPECT_EQ(p.completion_tokens, 3);  // held there until the deadline cut it
  EXPECT_GE(Clock::now(), request.deadline);
}

TEST_F(SlotSchedulerTest, DrainRefusesFailsTheQueueThenCuts) {
  test::HoldPoint hold(test::WithMaxTokens(4000), /*at=*/5);
  std::unique_ptr<SlotScheduler> scheduler = Make(1, 2, /*context=*/4096, &hold);
  std::shared_ptr<Generation> running = *scheduler->Submit(Greedy("Once upon a time", 4000));
  ASSERT_TRUE(hold.WaitUntilHeld());
  std::shared_ptr<Generation> queued = *scheduler->Submit(Greedy("Tom", 4));
  scheduler->Drain(milliseconds(100));
  EXPECT_EQ(Finish(*queued).status.code(), absl::StatusCode::kUnavailable);
  const Generation::Progress cut = Finish(*running);
  EXPECT_TRUE(cut.status.ok());
  EXPECT_EQ(cut.finish_reason, FinishReason::kLength);
  EXPECT_EQ(cut.completion_tokens, 5);
  EXPECT_EQ(scheduler->Submit(Greedy("Tom", 4)).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(SlotSchedulerTest, DrainLetsARunningGenerationFinishWithinTheGrace) {
  // Held at token 5 of 40 until the drain has begun (new generations are refused): what it
  // generates after that, it generates during the drain, and it ends whole.
  test::HoldPoint hold(test::WithMaxTokens(40), /*at=*/5);
  std::unique_ptr<SlotScheduler> scheduler = Make(1, 0, 0, &hold);
  const GenerationRequest request = Greedy("Once upon a time", 40);
  std::shared_ptr<Generation> running = *scheduler->Submit(request);
  ASSERT_TRUE(hold.WaitUntilHeld());
  std::jthread drain([&] { scheduler->Drain(std::chrono::seconds(60)); });
  while (scheduler->Submit(Greedy("Tom", 4)).status().code() != absl::StatusCode::kUnavailable) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  EXPECT_EQ(scheduler->stats().busy_slots, 1);
  hold.Release();
  drain.join();
  const Generation::Progress p = Finish(*running);
  EXPECT_TRUE(p.status.ok());
  EXPECT_EQ(p.finish_reason, FinishReason::kLength);
  EXPECT_EQ(p.completion_tokens, 40);
  EXPECT_EQ(p.Text(), tokenizer().Decode(Reference(request)));
}

TEST_F(SlotSchedulerTest, RefusesBadOptions) {
  LoadedRuntime& rt = test::StoriesRuntime();
  SchedulerOptions none;
  none.parallel = 0;
  EXPECT_FALSE(SlotScheduler::Create(*rt.executor, *rt.tokenizer, {}, none).ok());
  SchedulerOptions negative;
  negative.queue_length = -1;
  EXPECT_FALSE(SlotScheduler::Create(*rt.executor, *rt.tokenizer, {}, negative).ok());
}

}  // namespace
}  // namespace pinfer
