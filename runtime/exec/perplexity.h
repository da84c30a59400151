// Perplexity exactly as llama.cpp's llama-perplexity computes it (its default mode):
//   - the whole text is tokenized once, with BOS first (when the vocabulary adds BOS);
//   - it is cut into consecutive chunks of n_ctx tokens (at most max_chunks; the text must hold at
//     least 2·n_ctx tokens); the first token of each chunk is replaced by BOS;
//   - each chunk is evaluated from an empty KV cache;
//   - only the second half is scored: the logits at positions n_ctx/2 … n_ctx-2 predict the tokens
//     at n_ctx/2+1 … n_ctx-1 (n_ctx - n_ctx/2 - 1 tokens per chunk);
//   - PPL = exp(mean NLL); the ± estimate is PPL · sqrt((mean(NLL²) − mean(NLL)²) / (count − 1)).
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/exec/session.h"
#include "runtime/text/tokenizer.h"

namespace pinfer {

struct PerplexityOptions {
  int64_t context = 0;      // n_ctx; 0: the session's context length
  int64_t max_chunks = -1;  // -1: every whole chunk of the text
  // Called after each chunk with its 1-based index, the chunk count and the running PPL.
  std::function<void(int64_t chunk, int64_t chunks, double ppl)> on_chunk;
};

struct PerplexityResult {
  int64_t text_tokens = 0;  // tokens of the whole text
  int64_t chunks = 0;
  int64_t scored_tokens = 0;
  double ppl = 0.0;
  double ppl_error = 0.0;           // the ± of llama.cpp's "Final estimate"
  std::vector<double> running_ppl;  // after each chunk
  ForwardStats stats;
};

absl::StatusOr<PerplexityResult> ComputePerplexity(Session& session, const Tokenizer& tokenizer,
                                                   std::string_view text,
                                                   const PerplexityOptions& options);

}  // namespace pinfer
