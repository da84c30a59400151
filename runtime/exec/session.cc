#include "runtime/exec/session.h"

#include <algorithm>
#include <chrono>
#include <new>

#include "absl/strings/str_cat.h"

namespace pinfer {

Session::Session(Executor& executor, SequenceState state)
    : executor_(executor), state_(std::move(state)) {}

absl::StatusOr<std::unique_ptr<Session>> Session::Create(Executor& executor,
                                                         const SessionOptions& options) {
  const ModelConfig& c = executor.config();
  if (options.context_length < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("the context length must be positive, got ", options.context_length));
  }
  const int64_t context = options.context_length > 0 ? options.context_length : c.context_length;
  absl::StatusOr<SequenceState> state =
      SequenceState::Create(c, context, std::min(executor.batch_size(), context));
  if (!state.ok()) return state.status();
  auto session = std::unique_ptr<Session>(new Session(executor, *std::move(state)));
  try {
    session->logits_.resize(static_cast<size_t>(c.vocab_size));
    session->tokens_.reserve(static_cast<size_t>(context));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        absl::StrCat("not enough memory for a session of ", context, " tokens"));
  }
  return session;
}

void Session::Truncate(int64_t n) {
  n = std::clamp<int64_t>(n, 0, position());
  tokens_.resize(static_cast<size_t>(n));
}

absl::StatusOr<std::span<const float>> Session::Evaluate(std::span<const int32_t> tokens,
                                                         Logits logits) {
  const ModelConfig& c = executor_.config();
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n == 0) return absl::InvalidArgumentError("no tokens to evaluate");
  if (position() + n > context_length()) {
    return absl::OutOfRangeError(absl::StrCat("the context is full: ", n,
                                              " more tokens at position ", position(),
                                              " exceed the context length ", context_length()));
  }
  for (int32_t token : tokens) {
    if (token < 0 || token >= c.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", token, " is outside the ", c.vocab_size, "-token vocabulary"));
    }
  }
  const size_t vocab = static_cast<size_t>(c.vocab_size);
  if (logits == Logits::kAll) logits_.resize(static_cast<size_t>(n) * vocab);
  const auto start = std::chrono::steady_clock::now();
  for (int64_t first = 0; first < n; first += state_.capacity) {
    const int64_t count = std::min(state_.capacity, n - first);
    const bool last_batch = first + count == n;
    Logits batch_logits = Logits::kNone;
    float* out = nullptr;
    if (logits == Logits::kAll) {
      batch_logits = Logits::kAll;
      out = logits_.data() + static_cast<size_t>(first) * vocab;
    } else if (logits == Logits::kLast && last_batch) {
      batch_logits = Logits::kLast;
      out = logits_.data();
    }
    const std::span<const int32_t> batch = tokens.subspan(first, count);
    if (absl::Status s =
            executor_.Forward(state_, position(), batch, batch_logits, out, observer_, stats_);
        !s.ok()) {
      return s;
    }
    tokens_.insert(tokens_.end(), batch.begin(), batch.end());
  }
  stats_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  switch (logits) {
    case Logits::kNone:
      return std::span<const float>();
    case Logits::kLast:
      return std::span<const float>(logits_.data(), vocab);
    case Logits::kAll:
      return std::span<const float>(logits_.data(), static_cast<size_t>(n) * vocab);
  }
  return std::span<const float>();
}

}  // namespace pinfer
