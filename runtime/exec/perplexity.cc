#include "runtime/exec/perplexity.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace pinfer {
namespace {

// −log p(token) from one row of logits, accumulated as llama.cpp does (float max and exponentials,
// double sum).
double NegativeLogLikelihood(const float* logits, int64_t vocab, int32_t token) {
  float max_logit = logits[0];
  for (int64_t i = 1; i < vocab; ++i) max_logit = std::max(max_logit, logits[i]);
  double sum_exp = 0.0;
  for (int64_t i = 0; i < vocab; ++i) sum_exp += std::exp(logits[i] - max_logit);
  return -(logits[token] - max_logit - std::log(sum_exp));
}

}  // namespace

absl::StatusOr<PerplexityResult> ComputePerplexity(Session& session, const Tokenizer& tokenizer,
                                                   std::string_view text,
                                                   const PerplexityOptions& options) {
  const int64_t n_ctx = options.context > 0 ? options.context : session.context_length();
  if (n_ctx < 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("perplexity needs a context of at least 4 tokens, got ", n_ctx));
  }
  if (n_ctx > session.context_length()) {
    return absl::InvalidArgumentError(absl::StrCat("the perplexity context ", n_ctx,
                                                   " exceeds the session's context ",
                                                   session.context_length()));
  }
  const std::vector<int32_t> tokens = tokenizer.Encode(text, /*add_special=*/true);
  const int64_t n_tokens = static_cast<int64_t>(tokens.size());
  if (n_tokens < 2 * n_ctx) {
    return absl::InvalidArgumentError(absl::StrCat("the text tokenizes to ", n_tokens,
                                                   " tokens; perplexity with a context of ", n_ctx,
                                                   " needs at least ", 2 * n_ctx));
  }
  PerplexityResult result;
  result.text_tokens = n_tokens;
  const int64_t available = n_tokens / n_ctx;
  result.chunks = options.max_chunks < 0 ? available : std::min(options.max_chunks, available);
  const int64_t first = n_ctx / 2;
  const int64_t vocab = session.executor().config().vocab_size;

  const ForwardStats before = session.stats();
  double nll = 0.0, nll2 = 0.0;
  int64_t count = 0;
  std::vector<int32_t> chunk(static_cast<size_t>(n_ctx));
  for (int64_t c = 0; c < result.chunks; ++c) {
    const int64_t start = c * n_ctx;
    std::copy(tokens.begin() + start, tokens.begin() + start + n_ctx, chunk.begin());
    if (tokenizer.add_bos()) chunk[0] = tokenizer.bos();
    session.Reset();
    // The first half only fills the cache; the second half's logits are scored.
    absl::StatusOr<std::span<const float>> ignored =
        session.Evaluate(std::span<const int32_t>(chunk).first(first), Logits::kNone);
    if (!ignored.ok()) return ignored.status();
    absl::StatusOr<std::span<const float>> logits =
        session.Evaluate(std::span<const int32_t>(chunk).subspan(first), Logits::kAll);
    if (!logits.ok()) return logits.status();
    for (int64_t j = 0; j < n_ctx - first - 1; ++j) {
      const double v = NegativeLogLikelihood(logits->data() + j * vocab, vocab,
                                             chunk[static_cast<size_t>(first + j + 1)]);
      nll += v;
      nll2 += v * v;
    }
    count += n_ctx - first - 1;
    result.running_ppl.push_back(std::exp(nll / static_cast<double>(count)));
    if (options.on_chunk) options.on_chunk(c + 1, result.chunks, result.running_ppl.back());
  }
  session.Reset();
  result.scored_tokens = count;
  result.stats = session.stats() - before;
  const double mean = nll / static_cast<double>(count);
  const double variance = nll2 / static_cast<double>(count) - mean * mean;
  result.ppl = std::exp(mean);
  result.ppl_error = variance > 0.0 && count > 1
                         ? std::sqrt(variance / static_cast<double>(count - 1)) * result.ppl
                         : 0.0;
  return result;
}

}  // namespace pinfer
