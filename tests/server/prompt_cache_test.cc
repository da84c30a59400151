// The prompt cache: a slot keeps the KV cache of its last generation; a new one reuses the longest
// prefix its prompt shares with a free slot's tokens (the next turn of a conversation, the same
// prompt again), is routed to the slot that holds it, and gives the text of a cold run; the reuse
// shows in the stats and in the OpenAI usage (prompt_tokens_details.cached_tokens).
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/app/server/slot_scheduler.h"
#include "runtime/exec/generator.h"
#include "tests/server/server_harness.h"

namespace pinfer {
namespace {

GenerationRequest Greedy(std::vector<int32_t> prompt, int64_t max_tokens) {
  return test::GreedyRequest(std::move(prompt), max_tokens);
}

std::vector<int32_t> Alone(const GenerationRequest& request) {
  return test::GenerateAlone(test::StoriesRuntime(), request);
}

Generation::Progress RunToTheEnd(SlotScheduler& scheduler, const GenerationRequest& request) {
  return test::WaitToTheEnd(**scheduler.Submit(request));
}

TEST(PromptCacheTest, AHitGivesTheColdTextAndIsRoutedToTheSlotThatHoldsIt) {
  LoadedRuntime& rt = test::StoriesRuntime();
  const Tokenizer& tokenizer = *rt.tokenizer;
  SchedulerOptions options;
  options.parallel = 2;
  std::unique_ptr<SlotScheduler> scheduler =
      *SlotScheduler::Create(*rt.executor, tokenizer, SessionOptions{256}, options);

  const GenerationRequest first = Greedy(tokenizer.Encode("Once upon a time", true), 10);
  const std::vector<int32_t> first_tokens = Alone(first);
  const Generation::Progress a = RunToTheEnd(*scheduler, first);
  EXPECT_EQ(a.Text(), test::PiecesOf(tokenizer, first_tokens));
  EXPECT_EQ(a.cached_tokens, 0);

  // An unrelated prompt (it shares BOS only) goes to the unused slot, leaving the first one's
  // cache alone...
  const GenerationRequest other = Greedy(tokenizer.Encode("Tom had a red ball.", true), 6);
  const Generation::Progress c = RunToTheEnd(*scheduler, other);
  EXPECT_EQ(c.Text(), test::PiecesOf(tokenizer, Alone(other)));
  EXPECT_EQ(c.cached_tokens, 0);
  // ...and again, it goes to its slot, not to the least recently used one: all of it but its last
  // token is reused, and the text is the cold one.
  const Generation::Progress e = RunToTheEnd(*scheduler, other);
  EXPECT_EQ(e.Text(), c.Text());
  EXPECT_EQ(e.cached_tokens, static_cast<int64_t>(other.prompt.size()) - 1);

  // The next turn of the first conversation: its prompt, its answer and more. Its slot holds the
  // prompt and the 9 answer tokens it evaluated (the last one chosen was never evaluated).
  std::vector<int32_t> turn = first.prompt;
  turn.insert(turn.end(), first_tokens.begin(), first_tokens.end());
  for (const int32_t t : tokenizer.Encode(" Then Tom came to play.", false)) turn.push_back(t);
  const GenerationRequest next = Greedy(turn, 12);
  const Generation::Progress b = RunToTheEnd(*scheduler, next);
  EXPECT_EQ(b.Text(), test::PiecesOf(tokenizer, Alone(next)));
  const int64_t reused = static_cast<int64_t>(first.prompt.size()) + 9;
  EXPECT_EQ(b.cached_tokens, reused);
  EXPECT_EQ(b.prompt_tokens, static_cast<int64_t>(turn.size()));

  // The first prompt again finds it in the conversation's slot (not the least recently used).
  const Generation::Progress d = RunToTheEnd(*scheduler, first);
  EXPECT_EQ(d.Text(), a.Text());
  EXPECT_EQ(d.cached_tokens, static_cast<int64_t>(first.prompt.size()) - 1);

  const SchedulerStats stats = scheduler->stats();
  EXPECT_EQ(stats.prompt_cache_hits, 3);
  EXPECT_EQ(stats.cached_prompt_tokens, reused + static_cast<int64_t>(first.prompt.size()) - 1 +
                                            static_cast<int64_t>(other.prompt.size()) - 1);
  // Only what was not cached was evaluated.
  EXPECT_EQ(
      stats.prompt_tokens,
      static_cast<int64_t>(first.prompt.size() + turn.size() + other.prompt.size() + 2) - reused);
}

TEST(PromptCacheTest, TheUsageReportsTheCachedTokens) {
  std::unique_ptr<PiServer> server = test::StartServer();
  const test::json request = {{"prompt", "Once upon a time, there was a little girl"},
                              {"max_tokens", 8},
                              {"temperature", 0}};
  const test::HttpReply cold = test::Post(server->port(), "/v1/completions", request);
  ASSERT_EQ(cold.status, 200) << cold.body;
  const test::json cold_usage = cold.Json()["usage"];
  EXPECT_EQ(cold_usage["prompt_tokens_details"]["cached_tokens"], 0) << cold.body;
  const int64_t prompt_tokens = cold_usage["prompt_tokens"];

  const test::HttpReply warm = test::Post(server->port(), "/v1/completions", request);
  ASSERT_EQ(warm.status, 200) << warm.body;
  EXPECT_EQ(test::ReplyText(warm.Json()), test::ReplyText(cold.Json()));
  EXPECT_EQ(warm.Json()["usage"]["prompt_tokens"], prompt_tokens);
  EXPECT_EQ(warm.Json()["usage"]["prompt_tokens_details"]["cached_tokens"], prompt_tokens - 1)
      << warm.body;

  test::json streamed = request;
  streamed["stream"] = true;
  streamed["stream_options"] = {{"include_usage", true}};
  const test::StreamReply stream = test::PostStream(server->port(), "/v1/completions", streamed);
  ASSERT_TRUE(stream.done) << stream.raw;
  EXPECT_EQ(stream.Text(), test::ReplyText(cold.Json()));
  EXPECT_EQ(stream.events.back()["usage"]["prompt_tokens_details"]["cached_tokens"],
            prompt_tokens - 1)
      << stream.raw;
  EXPECT_EQ(server->stats().prompt_cache_hits, 2);
}

}  // namespace
}  // namespace pinfer
