#include "runtime/exec/executor.h"

#include <algorithm>
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

uint64_t SequenceState::Bytes(const ModelConfig& c, int64_t context, int64_t capacity,
                              DType cache_type) {
  const uint64_t scratch =
      static_cast<uint64_t>(capacity) *
      static_cast<uint64_t>(3 * c.dim + 2 * c.q_dim() + 2 * c.kv_dim() + 3 * c.n_ff);
  return KvCache::Bytes(c, context, cache_type) + scratch * sizeof(float);
}

absl::StatusOr<SequenceState> SequenceState::Create(const ModelConfig& c, int64_t context,
                                                    int64_t capacity, DType cache_type) {
  SequenceState s;
  s.context = context;
  s.capacity = capacity;
  absl::StatusOr<KvCache> kv = KvCache::Create(c, context, cache_type);
  if (!kv.ok()) return kv.status();
  s.kv = *std::move(kv);
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
        absl::StrCat("not enough memory for the scratch of a batch of ", capacity, " tokens"));
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

uint64_t Executor::Normalize(SequenceState& s, int64_t n, const float* weight) const {
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

uint64_t Executor::Attention(SequenceState& s, int64_t l, int64_t pos0, int64_t n,
                             ForwardStats& stats) const {
  const ModelConfig& c = model_.config();
  const LayerWeights& w = model_.layer(l);
  const int64_t q_dim = c.q_dim(), kv_dim = c.kv_dim();
  cpu::MatMul(w.attn_q, s.normed.data(), n, s.q.data());
  cpu::MatMul(w.attn_k, s.normed.data(), n, s.k.data());
  cpu::MatMul(w.attn_v, s.normed.data(), n, s.v.data());
  for (int64_t t = 0; t < n; ++t) {
    cpu::RopeInterleaved(s.q.data() + t * q_dim, c.n_heads, c.head_dim, pos0 + t, c.rope_theta);
    cpu::RopeInterleaved(s.k.data() + t * kv_dim, c.n_kv_heads, c.head_dim, pos0 + t, c.rope_theta);
  }
  s.kv.Write(l, pos0, n, s.k.data(), s.v.data());
  stats.kv_bytes += s.kv.Attend(l, s.q.data(), pos0, n, s.attention.data());
  cpu::MatMul(w.attn_output, s.attention.data(), n, s.projected.data());
  cpu::Add(s.projected.data(), n * c.dim, s.x.data());
  return w.AttentionBytes();
}

absl::Status Executor::ShiftCache(SequenceState& s, int64_t n_past, int64_t keep,
                                  int64_t discard) const {
  return s.kv.Shift(n_past, keep, discard);
}

absl::StatusOr<uint64_t> Executor::Ffn(SequenceState& s, int64_t l, int64_t pos0,
                                       std::span<const int32_t> tokens,
                                       ForwardObserver* observer) const {
  FfnCall call;
  call.layer = l;
  call.n = static_cast<int64_t>(tokens.size());
  call.input = s.normed.data();
  call.output = s.x.data();
  call.workspace = &s.ffn;
  call.need_activations = observer != nullptr;
  absl::StatusOr<uint64_t> bytes = ffn(l).Forward(call);
  if (!bytes.ok() || observer == nullptr) return bytes;
  FfnTrace trace;
  trace.layer = l;
  trace.pos0 = pos0;
  trace.tokens = tokens;
  trace.dim = model_.config().dim;
  trace.n_ff = model_.config().n_ff;
  trace.input = s.normed.data();
  trace.gate = s.ffn.gate.data();
  trace.activations = s.ffn.activations.data();
  observer->OnFfn(trace);
  return bytes;
}

uint64_t Executor::Classify(SequenceState& s, int64_t n, Logits logits, float* logits_out) const {
  if (logits == Logits::kNone) return 0;
  const ModelConfig& c = model_.config();
  // Only the rows whose logits are wanted go through the final norm and the classifier.
  const int64_t first = logits == Logits::kAll ? 0 : n - 1;
  const int64_t rows = n - first;
  for (int64_t t = 0; t < rows; ++t) {
    cpu::RmsNorm(s.x.data() + (first + t) * c.dim, model_.output_norm(), c.dim,
                 static_cast<float>(c.rms_eps), s.normed.data() + t * c.dim);
  }
  cpu::MatMul(model_.output(), s.normed.data(), rows, logits_out);
  return model_.output().row_bytes * static_cast<uint64_t>(model_.output().rows) +
         static_cast<uint64_t>(c.dim) * sizeof(float);
}

absl::Status Executor::Forward(SequenceState& s, int64_t pos0, std::span<const int32_t> tokens,
                               Logits logits, float* logits_out, ForwardObserver* observer,
                               ForwardStats& stats) const {
  const ModelConfig& c = model_.config();
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n > s.capacity || pos0 + n > s.context) {
    return absl::InternalError(absl::StrCat("a pass of ", n, " tokens at position ", pos0,
                                            " does not fit the sequence's buffers"));
  }
  const cpu::MatrixView& embedding = model_.token_embedding();
  for (int64_t t = 0; t < n; ++t) cpu::DecodeRows(embedding, tokens[t], 1, s.x.data() + t * c.dim);
  uint64_t bytes = static_cast<uint64_t>(n) * embedding.row_bytes;

  for (int64_t l = 0; l < c.n_layers; ++l) {
    const LayerWeights& w = model_.layer(l);
    bytes += Normalize(s, n, w.attn_norm);
    bytes += Attention(s, l, pos0, n, stats);  // x += attention(norm(x))
    bytes += Normalize(s, n, w.ffn_norm);
    absl::StatusOr<uint64_t> ffn_bytes = Ffn(s, l, pos0, tokens, observer);  // x += ffn[l](norm(x))
    if (!ffn_bytes.ok()) return ffn_bytes.status();
    bytes += *ffn_bytes;
  }
  bytes += Classify(s, n, logits, logits_out);
  stats.tokens += n;
  stats.passes += 1;
  stats.weight_bytes += bytes;
  return absl::OkStatus();
}

}  // namespace pinfer
