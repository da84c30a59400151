#include "runtime/exec/session.h"

#include <algorithm>
#include <new>

#include "absl/strings/str_cat.h"
#include "runtime/common/cli_common.h"

namespace pinfer {

absl::StatusOr<int64_t> ContextThatFits(const ModelConfig& c, int64_t requested, int64_t batch_size,
                                        int64_t sequences, std::optional<uint64_t> available_bytes,
                                        DType cache_type) {
  const int64_t wanted = requested > 0 ? requested : c.context_length;
  sequences = std::max<int64_t>(1, sequences);
  // Per sequence: the KV cache and the token and logit bookkeeping; once: the batch's scratch.
  auto bytes_for = [&](int64_t context) {
    return static_cast<uint64_t>(sequences) *
               (SequenceState::Bytes(c, context, cache_type) +
                static_cast<uint64_t>(context) * sizeof(int32_t) +
                static_cast<uint64_t>(c.vocab_size) * sizeof(float)) +
           BatchState::Bytes(c, std::min(batch_size, context));
  };
  if (!available_bytes || bytes_for(wanted) <= *available_bytes) return wanted;
  // The largest context that fits: bytes_for grows with the context.
  int64_t low = 0, high = wanted;
  while (low < high) {
    const int64_t mid = low + (high - low + 1) / 2;
    if (bytes_for(mid) <= *available_bytes) {
      low = mid;
    } else {
      high = mid - 1;
    }
  }
  constexpr int64_t kSmallestUsefulContext = 16;
  if (requested == 0 && low >= kSmallestUsefulContext) return low;
  const std::string who = sequences > 1
                              ? absl::StrCat(sequences, " sequences of ", wanted, " tokens need ")
                              : absl::StrCat("a context of ", wanted, " tokens needs ");
  return absl::ResourceExhaustedError(
      absl::StrCat(who, FormatBytes(bytes_for(wanted)), " (", std::string(DTypeName(cache_type)),
                   " KV cache and scratch), but only ", FormatBytes(*available_bytes),
                   " of memory is available; ",
                   low >= 1 ? absl::StrCat("the largest context that fits is -c ", low)
                            : std::string("not even one position fits")));
}

Session::Session(Executor& executor, SequenceState state, std::shared_ptr<BatchState> batch)
    : executor_(executor), state_(std::move(state)), batch_(std::move(batch)) {}

absl::StatusOr<std::unique_ptr<Session>> Session::Create(Executor& executor,
                                                         const SessionOptions& options) {
  const ModelConfig& c = executor.config();
  if (options.context_length < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("the context length must be positive, got ", options.context_length));
  }
  const int64_t batch_size = options.batch ? options.batch->capacity : executor.batch_size();
  // Host memory holds the KV cache of the layers whose attention runs on the host only.
  ModelConfig host = c;
  host.n_layers = executor.host_kv_layers();
  absl::StatusOr<int64_t> fitted = ContextThatFits(host, options.context_length, batch_size,
                                                   options.sequences, AvailableMemoryBytes(),
                                                   options.cache_type);
  if (!fitted.ok()) return fitted.status();
  const int64_t context = *fitted;
  absl::StatusOr<SequenceState> state = executor.CreateSequenceState(context, options.cache_type);
  if (!state.ok()) return state.status();
  std::shared_ptr<BatchState> batch = options.batch;
  if (!batch) {
    absl::StatusOr<BatchState> own = BatchState::Create(c, std::min(batch_size, context));
    if (!own.ok()) return own.status();
    batch = std::make_shared<BatchState>(*std::move(own));
  }
  if (absl::Status s = executor.ReserveDevice(batch->capacity); !s.ok()) return s;
  auto session = std::unique_ptr<Session>(new Session(executor, *std::move(state), batch));
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

absl::Status Session::ShiftContext(int64_t keep, int64_t discard) {
  if (absl::Status s = executor_.ShiftCache(state_, position(), keep, discard); !s.ok()) return s;
  tokens_.erase(tokens_.begin() + keep, tokens_.begin() + keep + discard);
  return absl::OkStatus();
}

absl::Status Session::CanEvaluate(std::span<const int32_t> tokens) const {
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
  return absl::OkStatus();
}

BatchEntry Session::Entry(std::span<const int32_t> tokens, Logits logits, size_t logits_offset) {
  BatchEntry e;
  e.sequence = &state_;
  e.pos0 = position();
  e.tokens = tokens;
  e.logits = logits;
  const size_t vocab = static_cast<size_t>(executor_.config().vocab_size);
  e.logits_out = logits == Logits::kNone ? nullptr : logits_.data() + logits_offset * vocab;
  e.observer = observer_;
  e.stats = &stats_;
  return e;
}

absl::StatusOr<std::span<const float>> Session::Evaluate(std::span<const int32_t> tokens,
                                                         Logits logits) {
  if (absl::Status s = CanEvaluate(tokens); !s.ok()) return s;
  const int64_t n = static_cast<int64_t>(tokens.size());
  const size_t vocab = static_cast<size_t>(executor_.config().vocab_size);
  if (logits == Logits::kAll) logits_.resize(static_cast<size_t>(n) * vocab);
  const int64_t chunk = std::min(executor_.batch_size(), batch_->capacity);
  for (int64_t first = 0; first < n; first += chunk) {
    const int64_t count = std::min(chunk, n - first);
    const bool last_batch = first + count == n;
    Logits batch_logits = Logits::kNone;
    if (logits == Logits::kAll || (logits == Logits::kLast && last_batch)) batch_logits = logits;
    const std::span<const int32_t> batch = tokens.subspan(first, count);
    const BatchEntry entry =
        Entry(batch, batch_logits, logits == Logits::kAll ? static_cast<size_t>(first) : 0);
    if (absl::Status s = executor_.Forward(*batch_, {&entry, 1}); !s.ok()) return s;
    tokens_.insert(tokens_.end(), batch.begin(), batch.end());
  }
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

absl::StatusOr<std::vector<std::span<const float>>> Session::EvaluateTogether(
    std::span<const Pass> passes, BatchState& batch) {
  std::vector<BatchEntry> entries;
  entries.reserve(passes.size());
  for (const Pass& pass : passes) {
    if (absl::Status s = pass.session->CanEvaluate(pass.tokens); !s.ok()) return s;
    const size_t vocab = static_cast<size_t>(pass.session->executor_.config().vocab_size);
    if (pass.logits == Logits::kAll) pass.session->logits_.resize(pass.tokens.size() * vocab);
    entries.push_back(pass.session->Entry(pass.tokens, pass.logits, 0));
  }
  if (passes.empty()) return std::vector<std::span<const float>>();
  const Executor& executor = passes.front().session->executor_;
  if (absl::Status s = executor.Forward(batch, entries); !s.ok()) return s;
  std::vector<std::span<const float>> logits;
  logits.reserve(passes.size());
  for (const Pass& pass : passes) {
    Session& session = *pass.session;
    session.tokens_.insert(session.tokens_.end(), pass.tokens.begin(), pass.tokens.end());
    const size_t vocab = static_cast<size_t>(session.executor_.config().vocab_size);
    const size_t rows =
        pass.logits == Logits::kAll ? pass.tokens.size() : (pass.logits == Logits::kLast ? 1 : 0);
    logits.emplace_back(session.logits_.data(), rows * vocab);
  }
  return logits;
}

}  // namespace pinfer
