#include "runtime/exec/executor.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <new>

#include "absl/strings/str_cat.h"
#include "runtime/cpu/kernels.h"
#include "runtime/exec/ffn_builder.h"

namespace pinfer {

namespace {

// Applies `op` field by field: one list of the fields for both operators.
template <typename Op>
ForwardStats FieldWise(const ForwardStats& a, const ForwardStats& b, Op op) {
  return {op(a.tokens, b.tokens), op(a.passes, b.passes), op(a.weight_bytes, b.weight_bytes),
          op(a.kv_bytes, b.kv_bytes), op(a.seconds, b.seconds)};
}

}  // namespace

ForwardStats& ForwardStats::operator+=(const ForwardStats& other) {
  return *this = FieldWise(*this, other, std::plus<>());
}

ForwardStats ForwardStats::operator-(const ForwardStats& other) const {
  return FieldWise(*this, other, std::minus<>());
}

double ForwardStats::EffectiveGBps() const {
  if (seconds <= 0.0) return 0.0;
  return static_cast<double>(weight_bytes + kv_bytes) / seconds / 1e9;
}

uint64_t SequenceState::Bytes(const ModelConfig& c, int64_t context, DType cache_type) {
  return KvCache::Bytes(c, context, cache_type);
}

absl::StatusOr<SequenceState> SequenceState::Create(const ModelConfig& c, int64_t context,
                                                    DType cache_type) {
  SequenceState s;
  s.context = context;
  absl::StatusOr<KvCache> kv = KvCache::Create(c, context, cache_type);
  if (!kv.ok()) return kv.status();
  s.kv = *std::move(kv);
  return s;
}

uint64_t BatchState::Bytes(const ModelConfig& c, int64_t capacity) {
  return static_cast<uint64_t>(capacity) *
         static_cast<uint64_t>(3 * c.dim + 2 * c.q_dim() + 2 * c.kv_dim() + 3 * c.n_ff) *
         sizeof(float);
}

absl::StatusOr<BatchState> BatchState::Create(const ModelConfig& c, int64_t capacity) {
  BatchState s;
  s.capacity = capacity;
  const size_t b = static_cast<size_t>(capacity);
  try {
    s.x.resize(b * c.dim);
    s.normed.resize(b * c.dim);
    s.q.resize(b * c.q_dim());
    s.k.resize(b * c.kv_dim());
    s.v.resize(b * c.kv_dim());
    s.attention.resize(b * c.q_dim());
    s.projected.resize(b * c.dim);
    s.ffn.capacity = capacity;
    s.ffn.gate.resize(b * c.n_ff);
    s.ffn.up.resize(b * c.n_ff);
    s.ffn.activations.resize(b * c.n_ff);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        absl::StrCat("not enough memory for the scratch of a batch of ", capacity, " tokens (",
                     Bytes(c, capacity) / (1 << 20), " MiB)"));
  }
  return s;
}

Executor::Executor(const Model& model, const ExecutorOptions& options)
    : model_(model), options_(options) {
  options_.batch_size = std::max<int64_t>(1, options_.batch_size);
  // The dense setup has nothing that can fail (no plan, no selector).
  ffn_ = *BuildFfnLayers(model, FfnSetup{});
}

absl::Status Executor::SetFfnLayers(std::vector<std::unique_ptr<LayerFfn>> layers) {
  if (static_cast<int64_t>(layers.size()) != model_.n_layers()) {
    return absl::InvalidArgumentError(
        absl::StrCat(layers.size(), " FFN layers for a model of ", model_.n_layers()));
  }
  for (size_t l = 0; l < layers.size(); ++l) {
    if (layers[l] == nullptr || layers[l]->layer() != static_cast<int64_t>(l)) {
      return absl::InvalidArgumentError(absl::StrCat("FFN layer ", l, " is missing or misplaced"));
    }
  }
  ffn_ = std::move(layers);
  return absl::OkStatus();
}

uint64_t Executor::Normalize(BatchState& s, int64_t n, const float* weight) const {
  const ModelConfig& c = model_.config();
  const float eps = static_cast<float>(c.rms_eps);
  for (int64_t t = 0; t < n; ++t) {
    cpu::RmsNorm(s.x.data() + t * c.dim, weight, c.dim, eps, s.normed.data() + t * c.dim);
  }
  if (c.norm_act.kind == ActivationKind::kShiftedRelu) {
    cpu::ShiftedRelu(s.normed.data(), n * c.dim, c.norm_act.param);
  }
  return static_cast<uint64_t>(c.dim) * sizeof(float);
}

uint64_t Executor::Attention(BatchState& s, std::span<const BatchEntry> entries, int64_t n,
                             int64_t l) const {
  const ModelConfig& c = model_.config();
  const LayerWeights& w = model_.layer(l);
  const int64_t q_dim = c.q_dim(), kv_dim = c.kv_dim();
  cpu::MatMul(w.attn_q, s.normed.data(), n, s.q.data());
  cpu::MatMul(w.attn_k, s.normed.data(), n, s.k.data());
  cpu::MatMul(w.attn_v, s.normed.data(), n, s.v.data());
  int64_t row = 0;
  for (const BatchEntry& e : entries) {
    const int64_t rows = static_cast<int64_t>(e.tokens.size());
    e.stats->kv_bytes +=
        Attend(*e.sequence, l, e.pos0, rows, s.q.data() + row * q_dim, s.k.data() + row * kv_dim,
               s.v.data() + row * kv_dim, s.attention.data() + row * q_dim);
    row += rows;
  }
  cpu::MatMul(w.attn_output, s.attention.data(), n, s.projected.data());
  cpu::Add(s.projected.data(), n * c.dim, s.x.data());
  return w.AttentionBytes();
}

uint64_t Executor::Attend(SequenceState& sequence, int64_t l, int64_t pos0, int64_t n, float* q,
                          float* k, const float* v, float* out) const {
  const ModelConfig& c = model_.config();
  const int64_t q_dim = c.q_dim(), kv_dim = c.kv_dim();
  for (int64_t t = 0; t < n; ++t) {
    cpu::RopeInterleaved(q + t * q_dim, c.n_heads, c.head_dim, pos0 + t, c.rope_theta);
    cpu::RopeInterleaved(k + t * kv_dim, c.n_kv_heads, c.head_dim, pos0 + t, c.rope_theta);
  }
  sequence.kv.Write(l, pos0, n, k, v);
  return sequence.kv.Attend(l, q, pos0, n, out);
}

absl::Status Executor::ShiftCache(SequenceState& s, int64_t n_past, int64_t keep,
                                  int64_t discard) const {
  return s.kv.Shift(n_past, keep, discard);
}

absl::StatusOr<uint64_t> Executor::Ffn(BatchState& s, std::span<const BatchEntry> entries,
                                       int64_t n, int64_t l) const {
  const bool observed = std::any_of(entries.begin(), entries.end(),
                                    [](const BatchEntry& e) { return e.observer != nullptr; });
  FfnCall call;
  call.layer = l;
  call.n = n;
  call.input = s.normed.data();
  call.output = s.x.data();
  call.workspace = &s.ffn;
  call.need_activations = observed;
  absl::StatusOr<uint64_t> bytes = ffn(l).Forward(call);
  if (!bytes.ok() || !observed) return bytes;
  const ModelConfig& c = model_.config();
  int64_t row = 0;
  for (const BatchEntry& e : entries) {
    if (e.observer != nullptr) {
      FfnTrace trace;
      trace.layer = l;
      trace.pos0 = e.pos0;
      trace.tokens = e.tokens;
      trace.dim = c.dim;
      trace.n_ff = c.n_ff;
      trace.input = s.normed.data() + row * c.dim;
      trace.gate = s.ffn.gate.data() + row * c.n_ff;
      trace.activations = s.ffn.activations.data() + row * c.n_ff;
      e.observer->OnFfn(trace);
    }
    row += static_cast<int64_t>(e.tokens.size());
  }
  return bytes;
}

uint64_t Executor::Classify(BatchState& s, std::span<const BatchEntry> entries) const {
  const ModelConfig& c = model_.config();
  // Only the rows whose logits are wanted go through the final norm and the classifier: gathered
  // into `normed`, one product for all of them.
  int64_t rows = 0, row = 0, wanting = 0;
  for (const BatchEntry& e : entries) {
    const int64_t n = static_cast<int64_t>(e.tokens.size());
    const int64_t first = e.logits == Logits::kAll ? 0 : n - 1;
    if (e.logits != Logits::kNone) {
      ++wanting;
      for (int64_t t = first; t < n; ++t, ++rows) {
        cpu::RmsNorm(s.x.data() + (row + t) * c.dim, model_.output_norm(), c.dim,
                     static_cast<float>(c.rms_eps), s.normed.data() + rows * c.dim);
      }
    }
    row += n;
  }
  if (rows == 0) return 0;
  const size_t vocab = static_cast<size_t>(c.vocab_size);
  // One sequence's logits go straight to it; several sequences' through the batch's buffer.
  float* out = nullptr;
  for (const BatchEntry& e : entries) {
    if (e.logits != Logits::kNone) out = e.logits_out;
  }
  if (wanting > 1) {
    if (s.logits.size() < static_cast<size_t>(rows) * vocab) {
      s.logits.resize(static_cast<size_t>(rows) * vocab);
    }
    out = s.logits.data();
  }
  cpu::MatMul(model_.output(), s.normed.data(), rows, out);
  if (wanting > 1) {
    const float* from = s.logits.data();
    for (const BatchEntry& e : entries) {
      if (e.logits == Logits::kNone) continue;
      const size_t n = e.logits == Logits::kAll ? e.tokens.size() : 1;
      std::memcpy(e.logits_out, from, n * vocab * sizeof(float));
      from += n * vocab;
    }
  }
  return model_.output().row_bytes * static_cast<uint64_t>(model_.output().rows) +
         static_cast<uint64_t>(c.dim) * sizeof(float);
}

absl::Status Executor::Forward(BatchState& s, std::span<const BatchEntry> entries) const {
  const auto start = std::chrono::steady_clock::now();
  const ModelConfig& c = model_.config();
  int64_t n = 0;
  for (const BatchEntry& e : entries) {
    const int64_t rows = static_cast<int64_t>(e.tokens.size());
    if (e.sequence == nullptr || e.stats == nullptr ||
        (e.logits != Logits::kNone && e.logits_out == nullptr)) {
      return absl::InternalError("a batch entry lacks its sequence, stats or logits buffer");
    }
    if (rows == 0 || e.pos0 < 0 || e.pos0 + rows > e.sequence->context) {
      return absl::InternalError(absl::StrCat("a pass of ", rows, " tokens at position ", e.pos0,
                                              " does not fit the sequence's KV cache"));
    }
    n += rows;
  }
  if (n > s.capacity) {
    return absl::InternalError(
        absl::StrCat("a pass of ", n, " tokens exceeds the batch's ", s.capacity));
  }
  const cpu::MatrixView& embedding = model_.token_embedding();
  int64_t row = 0;
  for (const BatchEntry& e : entries) {
    for (const int32_t token : e.tokens) {
      cpu::DecodeRows(embedding, token, 1, s.x.data() + row++ * c.dim);
    }
  }
  uint64_t bytes = static_cast<uint64_t>(n) * embedding.row_bytes;

  for (int64_t l = 0; l < c.n_layers; ++l) {
    const LayerWeights& w = model_.layer(l);
    bytes += Normalize(s, n, w.attn_norm);
    bytes += Attention(s, entries, n, l);  // x += attention(norm(x))
    bytes += Normalize(s, n, w.ffn_norm);
    absl::StatusOr<uint64_t> ffn_bytes = Ffn(s, entries, n, l);  // x += ffn[l](norm(x))
    if (!ffn_bytes.ok()) return ffn_bytes.status();
    bytes += *ffn_bytes;
  }
  bytes += Classify(s, entries);
  // Each sequence's share of what the pass read and took, by its tokens (the last one gets the
  // rounding, so that the shares add up to the pass).
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  uint64_t bytes_left = bytes;
  for (size_t i = 0; i < entries.size(); ++i) {
    const BatchEntry& e = entries[i];
    const int64_t rows = static_cast<int64_t>(e.tokens.size());
    const uint64_t share = i + 1 == entries.size()
                               ? bytes_left
                               : bytes / static_cast<uint64_t>(n) * static_cast<uint64_t>(rows);
    bytes_left -= share;
    e.stats->tokens += rows;
    e.stats->passes += 1;
    e.stats->weight_bytes += share;
    e.stats->seconds += seconds * static_cast<double>(rows) / static_cast<double>(n);
  }
  return absl::OkStatus();
}

}  // namespace pinfer
