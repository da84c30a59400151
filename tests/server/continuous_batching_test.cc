// SlotScheduler's continuous batching: every step is one batched forward pass over the busy
// slots (a token of each generating one, prompt chunks within --batch-tokens); generations that
// join (from the queue, as slots free) and leave at different steps give the text each gives
// alone, with the dense FFN and the ReLU model's exact sparse FFN; a long prompt does not hold
// the others up; --batch-tokens below --parallel is refused.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/app/runtime_flags.h"
#include "runtime/app/server/slot_scheduler.h"
#include "runtime/exec/generator.h"
#include "tests/runtime/test_models.h"
#include "tests/server/server_harness.h"

namespace pinfer {
namespace {

using std::chrono::milliseconds;

GenerationRequest Greedy(const Tokenizer& tokenizer, const std::string& prompt,
                         int64_t max_tokens) {
  return test::GreedyRequest(tokenizer.Encode(prompt, /*add_special=*/true), max_tokens);
}

// Five generations of different prompt lengths and lengths over 3 slots: the first three are
// held before their first pass until all three are in their slots (so they start in one step),
// the other two wait in the queue and join as slots free, while the others run. Each gives the
// text it gives alone, and the steps were shared.
void ExpectScheduledEqualsAlone(LoadedRuntime& rt) {
  const Tokenizer& tokenizer = *rt.tokenizer;
  std::vector<GenerationRequest> requests = {
      Greedy(tokenizer, "", 14),
      Greedy(tokenizer, "Once upon a time", 20),
      Greedy(tokenizer, "Tom had a red ball. He liked to throw it high in the sky.", 6),
      Greedy(tokenizer,
             "Lily went to the park with her mom. They saw a big dog. The dog was happy and "
             "wanted to play with Lily.",
             16),
      Greedy(tokenizer, "The sun", 9),
  };
  std::vector<std::vector<int32_t>> alone;
  int64_t sequential_passes = 0;  // what one pass per slot and step would take
  constexpr int64_t kBatchTokens = 8;
  for (const GenerationRequest& r : requests) {
    alone.push_back(test::GenerateAlone(rt, r));
    ASSERT_EQ(alone.back().size(), static_cast<size_t>(r.max_tokens));
    sequential_passes += (static_cast<int64_t>(r.prompt.size()) + kBatchTokens - 1) / kBatchTokens +
                         r.max_tokens - 1;
  }
  test::HoldPoint hold([](const GenerationRequest&) { return true; }, /*at=*/0);
  SessionOptions session;
  session.context_length = 128;
  SchedulerOptions options;
  options.parallel = 3;
  options.queue_length = 4;
  options.batch_tokens = kBatchTokens;
  options.hold = hold.Hook();
  std::unique_ptr<SlotScheduler> scheduler =
      *SlotScheduler::Create(*rt.executor, tokenizer, session, options);
  std::vector<std::shared_ptr<Generation>> generations;
  for (const GenerationRequest& r : requests) generations.push_back(*scheduler->Submit(r));
  ASSERT_TRUE(hold.WaitUntilHeld(3));
  hold.Release();
  for (size_t i = 0; i < requests.size(); ++i) {
    const Generation::Progress p = test::WaitToTheEnd(*generations[i]);
    EXPECT_TRUE(p.status.ok()) << p.status;
    EXPECT_EQ(p.Text(), test::PiecesOf(tokenizer, alone[i])) << "generation " << i;
    EXPECT_EQ(p.completion_tokens, requests[i].max_tokens) << "generation " << i;
  }
  const SchedulerStats stats = scheduler->stats();
  EXPECT_EQ(stats.batch_tokens, kBatchTokens);
  EXPECT_EQ(stats.finished, 5);
  // Shared steps: far fewer passes than one per slot and step.
  EXPECT_LT(stats.steps, sequential_passes * 2 / 3) << sequential_passes;
}

TEST(ContinuousBatchingTest, ScheduledGenerationsEqualEachAlone) {
  ExpectScheduledEqualsAlone(test::StoriesRuntime());
}

TEST(ContinuousBatchingTest, ScheduledSparseGenerationsEqualEachAlone) {
  // The ReLU model under --sparse-mode exact: the FFN selects gate-first over each step's batch.
  RuntimeFlags flags;
  flags.model_path = test::ConvertedModel(test::BundledModel::kReluLlama260K);
  flags.populate = false;
  flags.sparse.mode = "exact";
  absl::StatusOr<LoadedRuntime> rt = LoadRuntime(flags);
  ASSERT_TRUE(rt.ok()) << rt.status();
  ExpectScheduledEqualsAlone(*rt);
}

TEST(ContinuousBatchingTest, ALongPromptDoesNotStallAGeneratingSlot) {
  // A prompt of about 300 tokens starts with a generation of 12 tokens: with --batch-tokens 16,
  // the generation gets a token at every step and the prompt the rest of the step, so the
  // generation is over long before the prompt has been evaluated.
  LoadedRuntime& rt = test::StoriesRuntime();
  const Tokenizer& tokenizer = *rt.tokenizer;
  std::string words;
  for (int i = 0; i < 30; ++i) words += "Lily and Tom played with a ball. ";
  const GenerationRequest long_prompt = Greedy(tokenizer, words, 4);
  ASSERT_GT(long_prompt.prompt.size(), 12u * 16u);
  ASSERT_LT(long_prompt.prompt.size(), 500u);
  const GenerationRequest running = Greedy(tokenizer, "Once upon a time", 12);
  std::atomic<bool> go{false};
  SlotScheduler* scheduler_seen = nullptr;
  int64_t prompt_tokens_when_done = -1;  // evaluated when the 12 tokens were out
  SchedulerOptions options;
  options.parallel = 2;
  options.batch_tokens = 16;
  // Both wait until both are in their slots, then start in the same step; the long prompt's
  // question before each pass notes how far it was when the other generation finished.
  options.hold = [&](const Generation& g, int64_t) {
    if (!go) return true;
    if (g.request().max_tokens == 4 && prompt_tokens_when_done < 0) {
      const SchedulerStats stats = scheduler_seen->stats();
      if (stats.finished == 1) prompt_tokens_when_done = stats.prompt_tokens;
    }
    return false;
  };
  std::unique_ptr<SlotScheduler> scheduler =
      *SlotScheduler::Create(*rt.executor, tokenizer, SessionOptions{512}, options);
  scheduler_seen = scheduler.get();
  std::shared_ptr<Generation> first = *scheduler->Submit(running);
  std::shared_ptr<Generation> second = *scheduler->Submit(long_prompt);
  for (int i = 0; i < 20000 && scheduler->stats().busy_slots < 2; ++i) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  ASSERT_EQ(scheduler->stats().busy_slots, 2);
  go = true;
  const Generation::Progress p = test::WaitToTheEnd(*first);
  EXPECT_EQ(p.Text(), test::PiecesOf(tokenizer, test::GenerateAlone(rt, running)));
  const Generation::Progress q = test::WaitToTheEnd(*second);
  EXPECT_EQ(q.Text(), test::PiecesOf(tokenizer, test::GenerateAlone(rt, long_prompt)));
  // 12 steps of at most 16 tokens, one of them the other generation's.
  EXPECT_GT(prompt_tokens_when_done, 0);
  EXPECT_LE(prompt_tokens_when_done, 12 * 16);
}

TEST(ContinuousBatchingTest, BatchTokensBelowParallelAreRefused) {
  LoadedRuntime& rt = test::StoriesRuntime();
  SchedulerOptions options;
  options.parallel = 4;
  options.batch_tokens = 3;
  const absl::StatusOr<std::unique_ptr<SlotScheduler>> refused =
      SlotScheduler::Create(*rt.executor, *rt.tokenizer, {}, options);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("--batch-tokens must be at least --parallel (4)"),
            std::string::npos)
      << refused.status();
  options.batch_tokens = 0;  // the executor's batch size
  const absl::StatusOr<std::unique_ptr<SlotScheduler>> fine =
      SlotScheduler::Create(*rt.executor, *rt.tokenizer, {}, options);
  ASSERT_TRUE(fine.ok()) << fine.status();
  EXPECT_EQ((*fine)->stats().batch_tokens, rt.executor->batch_size());
}

}  // namespace
}  // namespace pinfer
