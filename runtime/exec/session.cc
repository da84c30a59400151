#include "runtime/exec/session.h"

#include <algorithm>
#include <chrono>
#include <new>

#include "absl/strings/str_cat.h"
#include "runtime/cpu/kernels.h"

namespace pinfer {

ForwardStats& ForwardStats::operator+=(const ForwardStats& other) {
  tokens += other.tokens;
  passes += other.passes;
  weight_bytes += other.weight_bytes;
  kv_bytes += other.kv_bytes;
  seconds += other.seconds;
  return *this;
}

ForwardStats ForwardStats::operator-(const ForwardStats& other) const {
  ForwardStats d;
  d.tokens = tokens - other.tokens;
  d.passes = passes - other.passes;
  d.weight_bytes = weight_bytes - other.weight_bytes;
  d.kv_bytes = kv_bytes - other.kv_bytes;
  d.seconds = seconds - other.seconds;
  return d;
}

double ForwardStats::EffectiveGBps() const {
  if (seconds <= 0.0) return 0.0;
  return static_cast<double>(weight_bytes + kv_bytes) / seconds / 1e9;
}

Session::Session(Executor& executor, int64_t context_length)
    : executor_(executor),
      model_(executor.model()),
      context_length_(context_length),
      capacity_(std::min(executor.batch_size(), context_length)) {}

absl::StatusOr<std::unique_ptr<Session>> Session::Create(Executor& executor,
                                                         const SessionOptions& options) {
  const ModelConfig& c = executor.config();
  const int64_t context = options.context_length > 0 ? options.context_length : c.context_length;
  if (options.context_length < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("the context length must be positive, got ", options.context_length));
  }
  auto session = std::unique_ptr<Session>(new Session(executor, context));
  const size_t b = static_cast<size_t>(session->capacity_);
  try {
    const size_t cache = static_cast<size_t>(c.n_layers) * static_cast<size_t>(context) *
                         static_cast<size_t>(c.kv_dim());
    session->key_cache_.resize(cache);
    session->value_cache_.resize(cache);
    session->x_.resize(b * c.dim);
    session->normed_.resize(b * c.dim);
    session->q_.resize(b * c.q_dim());
    session->attention_.resize(b * c.q_dim());
    session->projected_.resize(b * c.dim);
    FfnWorkspace& ws = session->ffn_workspace_;
    ws.capacity = session->capacity_;
    ws.gate.resize(b * c.n_ff);
    ws.up.resize(b * c.n_ff);
    ws.activations.resize(b * c.n_ff);
    session->logits_.resize(static_cast<size_t>(c.vocab_size));
    session->tokens_.reserve(static_cast<size_t>(context));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        absl::StrCat("not enough memory for a context of ", context, " tokens (KV cache of ",
                     2 * c.n_layers * context * c.kv_dim() * 4 / (1 << 20), " MiB)"));
  }
  return session;
}

void Session::Truncate(int64_t n) {
  n = std::clamp<int64_t>(n, 0, position());
  tokens_.resize(static_cast<size_t>(n));
}

float* Session::KeyRow(int64_t layer, int64_t pos) {
  return key_cache_.data() + (layer * context_length_ + pos) * executor_.config().kv_dim();
}

float* Session::ValueRow(int64_t layer, int64_t pos) {
  return value_cache_.data() + (layer * context_length_ + pos) * executor_.config().kv_dim();
}

absl::StatusOr<std::span<const float>> Session::Evaluate(std::span<const int32_t> tokens,
                                                         Logits logits) {
  const ModelConfig& c = executor_.config();
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n == 0) return absl::InvalidArgumentError("no tokens to evaluate");
  if (position() + n > context_length_) {
    return absl::OutOfRangeError(absl::StrCat("the context is full: ", n,
                                              " more tokens at position ", position(),
                                              " exceed the context length ", context_length_));
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
  for (int64_t first = 0; first < n; first += capacity_) {
    const int64_t count = std::min(capacity_, n - first);
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
    if (absl::Status s = Forward(tokens.subspan(first, count), batch_logits, out); !s.ok()) {
      return s;
    }
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

absl::Status Session::Forward(std::span<const int32_t> tokens, Logits logits, float* logits_out) {
  const ModelConfig& c = executor_.config();
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t pos0 = position();
  const int64_t dim = c.dim, q_dim = c.q_dim(), kv_dim = c.kv_dim();
  const float eps = static_cast<float>(c.rms_eps);
  const bool norm_relu = c.norm_act.kind == ActivationKind::kShiftedRelu;
  float* x = x_.data();
  float* normed = normed_.data();
  uint64_t weight_bytes = 0;

  // The normalised input of a sub-block: rmsnorm · weight, then the norm activation if any.
  auto normalize = [&](const float* weight) {
    for (int64_t t = 0; t < n; ++t) cpu::RmsNorm(x + t * dim, weight, dim, eps, normed + t * dim);
    if (norm_relu) cpu::ShiftedRelu(normed, n * dim, c.norm_act.param);
    weight_bytes += static_cast<uint64_t>(dim) * sizeof(float);
  };

  const cpu::MatrixView& embedding = model_.token_embedding();
  for (int64_t t = 0; t < n; ++t) cpu::DecodeRows(embedding, tokens[t], 1, x + t * dim);
  weight_bytes += static_cast<uint64_t>(n) * embedding.row_bytes;

  const cpu::AttentionShape shape{c.n_heads, c.n_kv_heads, c.head_dim, kv_dim};
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const LayerWeights& w = model_.layer(l);
    normalize(w.attn_norm);
    float* k = KeyRow(l, pos0);
    float* v = ValueRow(l, pos0);
    cpu::MatMul(w.attn_q, normed, n, q_.data());
    cpu::MatMul(w.attn_k, normed, n, k);
    cpu::MatMul(w.attn_v, normed, n, v);
    for (int64_t t = 0; t < n; ++t) {
      cpu::RopeInterleaved(q_.data() + t * q_dim, c.n_heads, c.head_dim, pos0 + t, c.rope_theta);
      cpu::RopeInterleaved(k + t * kv_dim, c.n_kv_heads, c.head_dim, pos0 + t, c.rope_theta);
    }
    cpu::Attention(shape, q_.data(), KeyRow(l, 0), ValueRow(l, 0), pos0, n, attention_.data());
    cpu::MatMul(w.attn_output, attention_.data(), n, projected_.data());
    cpu::Add(projected_.data(), n * dim, x);
    weight_bytes += w.AttentionBytes();
    stats_.kv_bytes += 2 * static_cast<uint64_t>(pos0 + n) * kv_dim * sizeof(float);

    normalize(w.ffn_norm);
    FfnCall call;
    call.layer = l;
    call.n = n;
    call.pos0 = pos0;
    call.input = normed;
    call.output = x;
    call.workspace = &ffn_workspace_;
    call.need_activations = observer_ != nullptr;
    absl::StatusOr<FfnCallStats> ffn = executor_.ffn(l).Forward(call);
    if (!ffn.ok()) return ffn.status();
    weight_bytes += ffn->weight_bytes;
    if (observer_ != nullptr) {
      FfnTrace trace;
      trace.layer = l;
      trace.pos0 = pos0;
      trace.tokens = tokens;
      trace.dim = dim;
      trace.n_ff = c.n_ff;
      trace.input = normed;
      trace.gate = ffn_workspace_.gate.data();
      trace.activations = ffn_workspace_.activations.data();
      observer_->OnFfn(trace);
    }
  }

  if (logits != Logits::kNone) {
    // Only the rows whose logits are wanted go through the final norm and the classifier.
    const int64_t first = logits == Logits::kAll ? 0 : n - 1;
    const int64_t rows = n - first;
    for (int64_t t = 0; t < rows; ++t) {
      cpu::RmsNorm(x + (first + t) * dim, model_.output_norm(), dim, eps, normed + t * dim);
    }
    cpu::MatMul(model_.output(), normed, rows, logits_out);
    weight_bytes += model_.output().row_bytes * static_cast<uint64_t>(model_.output().rows) +
                    static_cast<uint64_t>(dim) * sizeof(float);
  }
  tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
  stats_.tokens += n;
  stats_.passes += 1;
  stats_.weight_bytes += weight_bytes;
  return absl::OkStatus();
}

}  // namespace pinfer
