// Text generation over a session: the prompt is evaluated in chunks, then each generated token is
// sampled and evaluated in turn. Generator does one forward pass per Step() so that a scheduler
// can interleave several generations (pi-server's slots); Generate() runs one to the end,
// reporting each token as soon as it is chosen (so that callers stream it).
//
// Sampling, the end tokens, the token budget, the full-context check and the context shift live in
// Generator only: pi-run and pi-server end their generations the same way.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/exec/session.h"
#include "runtime/text/sampler.h"
#include "runtime/text/tokenizer.h"

namespace pinfer {

// What one context shift did (GenerationOptions::context_shift).
struct ContextShift {
  int64_t kept = 0;       // tokens kept at the start of the session
  int64_t discarded = 0;  // the tokens after them that were dropped
  int64_t position = 0;   // the session's position after the shift
};

struct GenerationOptions {
  int64_t max_tokens = -1;  // -1: until EOS or a full context
  bool stop_at_eos = true;  // EOS ends the generation and is not reported
  // Tokens that end the generation besides EOS (whatever stop_at_eos says); not reported either.
  std::vector<int32_t> end_tokens;
  // Prompt tokens per step; 0: the whole prompt in one step (the session still runs it in batches
  // of the executor's size, so any value gives the same logits when it is that size).
  int64_t prompt_batch = 0;
  // llama.cpp's context shift: when the context is full (the token chosen, or the prompt given to
  // Start, does not fit), keep the first `keep_tokens` tokens of the session, drop the oldest half
  // of the others (at least what the token or prompt needs; Session::ShiftContext) and go on,
  // instead of ending with kContextFull. When keep_tokens leaves too little to drop, the context
  // is full as without.
  bool context_shift = false;
  int64_t keep_tokens = 0;
  // Told of each shift, when set (pi-run notes them on stderr).
  std::function<void(const ContextShift&)> on_context_shift;
};

// Why a generation is over.
enum class GenerationEnd {
  kRunning,          // not over
  kEndToken,         // it chose EOS (with stop_at_eos) or an end token
  kMaxTokens,        // it generated max_tokens
  kContextFull,      // the token it chose does not fit the context (and no shift made room)
  kStoppedByCaller,  // Stop()
};

// What one step did.
struct GenerationStep {
  int64_t prompt_tokens = 0;  // prompt tokens evaluated
  // The token chosen, to report; -1 when none: a prompt chunk that is not the last, an end token
  // (those are not reported), or a max_tokens of 0.
  int32_t token = -1;
  GenerationEnd end = GenerationEnd::kRunning;  // over after this step, unless kRunning
};

// One generation, advanced one forward pass at a time: Start(prompt), then Step() while running().
// A step evaluates a chunk of the prompt or the token chosen at the previous step; the step that
// gets logits (the last prompt chunk, or any decode step) chooses the next token. A token is thus
// evaluated at the step after the one that reported it, and never when the generation ends with
// it (max_tokens, a full context, Stop()): it is left as pending_token().
//
// Step() is NextPass(), Session::Evaluate, then Consume(); a driver that evaluates several
// sessions in one batched pass calls the two halves itself.
class Generator {
 public:
  // Keeps references to all three (they must outlive it).
  Generator(Session& session, Sampler& sampler, const Tokenizer& tokenizer,
            GenerationOptions options);

  // Begins a generation after `prompt` (not empty), appended at the session's current position
  // (a conversation's next turn continues from where the last one stopped). Fails, changing
  // nothing, when a generation is running or the prompt does not fit the rest of the context
  // (even after a context shift, when that is on).
  absl::Status Start(std::span<const int32_t> prompt);

  // One forward pass of the running generation. A failed evaluation changes nothing.
  absl::StatusOr<GenerationStep> Step();

  // What the next forward pass evaluates for this generation (no tokens when it is not running):
  // the next prompt chunk (logits of its last token when it is the prompt's last chunk), or the
  // pending token (its logits). `max_prompt_tokens` > 0 bounds the chunk further (a scheduler's
  // token budget for the step); 0: the options' prompt_batch only.
  struct Pass {
    std::span<const int32_t> tokens;
    Logits logits = Logits::kNone;
  };
  Pass NextPass(int64_t max_prompt_tokens = 0) const;
  // After the session has evaluated `evaluated` (a NextPass()): `logits` as it asked for, `cost`
  // that pass's share of the session's stats. Samples when there are logits, and decides whether
  // it is over.
  GenerationStep Consume(const Pass& evaluated, std::span<const float> logits,
                         const ForwardStats& cost);

  // Ends the running generation at the caller's request (kStoppedByCaller); the last reported
  // token stays pending. Nothing happens when it is not running.
  void Stop();

  bool running() const { return started_ && end_ == GenerationEnd::kRunning; }
  GenerationEnd end() const { return end_; }
  int64_t generated() const { return generated_; }  // tokens reported
  // Prompt tokens not evaluated yet: 0 once the generation decodes a token per pass.
  int64_t prompt_left() const { return static_cast<int64_t>(prompt_.size() - prompt_done_); }
  int64_t context_shifts() const { return context_shifts_; }  // since Start()
  // The last reported token when it was not evaluated, -1 otherwise; a caller that continues the
  // conversation evaluates it first.
  int32_t pending_token() const { return pending_; }
  const ForwardStats& prompt_stats() const { return prompt_stats_; }  // the prompt's passes
  const ForwardStats& decode_stats() const { return decode_stats_; }  // the generated tokens'

 private:
  size_t NextChunk(int64_t max_prompt_tokens) const;  // prompt tokens of the next pass
  bool IsEndToken(int32_t token) const;
  // Whether `n` more tokens fit the session, after a context shift when they would not and
  // context_shift is on (the shift is made only when it makes room).
  bool MakeRoom(int64_t n);
  // Chooses the token after the last evaluated one.
  void Choose(std::span<const float> logits, GenerationStep& step);

  Session& session_;
  Sampler& sampler_;
  const Tokenizer& tokenizer_;
  const GenerationOptions options_;
  bool started_ = false;
  GenerationEnd end_ = GenerationEnd::kRunning;
  std::vector<int32_t> prompt_;
  size_t prompt_done_ = 0;  // prompt tokens evaluated
  int64_t generated_ = 0;
  int64_t context_shifts_ = 0;
  int32_t pending_ = -1;
  ForwardStats prompt_stats_;
  ForwardStats decode_stats_;
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated, in order (without the final EOS or end token)
  bool hit_eos = false;         // EOS or an end token ended it
  bool context_full = false;
  bool stopped_by_caller = false;
  int64_t context_shifts = 0;  // context shifts made to go on past a full context
  // The last generated token when it was not evaluated (generation stopped right after choosing
  // it); a caller that continues the conversation evaluates it first. -1 otherwise.
  int32_t pending_token = -1;
  ForwardStats prompt;  // evaluating the prompt
  ForwardStats decode;  // evaluating generated tokens one by one
};

// Appends `prompt` (not empty) to the session, then generates. `on_token` is called with each
// chosen token before it is evaluated; returning false stops the generation. The sampler sees the
// prompt and the generated tokens through Accept().
absl::StatusOr<GenerationResult> Generate(Session& session, Sampler& sampler,
                                          const Tokenizer& tokenizer,
                                          std::span<const int32_t> prompt,
                                          const GenerationOptions& options,
                                          const std::function<bool(int32_t)>& on_token);

// How a prompt that does not fit the context is handled.
struct PromptFit {
  std::vector<int32_t> tokens;
  int64_t dropped = 0;  // tokens removed by truncation
};
// Checks that `prompt` fits a context of `context_length` positions. When it does not: with
// `truncate`, keeps the first token if it is BOS and the most recent tokens, leaving room for
// min(max_tokens, context/2) generated tokens (context/2 when max_tokens is -1); without, fails
// with a clear message.
absl::StatusOr<PromptFit> FitPromptToContext(std::vector<int32_t> prompt, int64_t context_length,
                                             int64_t max_tokens, bool truncate, int32_t bos);

}  // namespace pinfer
