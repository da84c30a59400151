#include "runtime/exec/executor.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <new>

#include "absl/strings/str_cat.h"
#include "runtime/cpu/kernels.h"
#include "runtime/exec/ffn_builder.h"

// A failed step ends the pass with its status.
#define PI_RETURN_IF_ERROR(expr)                                    \
  do {                                                             \
    if (absl::Status pi_status_ = (expr); !pi_status_.ok()) {      \
      return pi_status_;                                           \
    }                                                              \
  } while (false)

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

// The device's activations of a pass, grown to the largest pass so far.
struct Executor::DeviceScratch {
  int64_t capacity = 0;
  BackendBuffer x, normed, q, k, v, attention, projected, partial;
  BackendBuffer logits;
  size_t logits_floats = 0;
};

Executor::Executor(const Model& model, const ExecutorOptions& options)
    : model_(model), options_(options), host_(CpuBackend::Host()) {
  options_.batch_size = std::max<int64_t>(1, options_.batch_size);
  // The dense setup has nothing that can fail (no plan, no selector), nor has the host placement.
  ffn_ = *BuildFfnLayers(model, FfnSetup{});
  (void)SetPlacement(DensePlacement{});
}

Executor::~Executor() {
  // The device's buffers go back to it while it lives.
  scratch_.reset();
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

absl::Status Executor::SetPlacement(DensePlacement p) {
  const ModelConfig& c = model_.config();
  if (!p.attention_on_device.empty() &&
      static_cast<int64_t>(p.attention_on_device.size()) != c.n_layers) {
    return absl::InvalidArgumentError(absl::StrCat("a placement of ", p.attention_on_device.size(),
                                                   " layers for a model of ", c.n_layers));
  }
  const bool any = p.classifier_on_device ||
                   std::any_of(p.attention_on_device.begin(), p.attention_on_device.end(),
                               [](uint8_t on) { return on != 0; });
  if (any && p.device == nullptr) {
    return absl::InvalidArgumentError("a placement on the device needs a device backend");
  }
  // The old device's scratch goes before the old device may.
  scratch_ = std::make_unique<DeviceScratch>();
  std::vector<LayerPlace> places(static_cast<size_t>(c.n_layers));
  int64_t host_slots = 0, device_slots = 0;
  auto upload = [](Backend& b, const cpu::MatrixView& w, MemoryPart part, BackendMatrix& out) {
    absl::StatusOr<BackendMatrix> m = b.UploadWeight(w, {}, part);
    if (!m.ok()) return m.status();
    out = *m;
    return absl::OkStatus();
  };
  if (any) PI_RETURN_IF_ERROR(p.device->SupportsModel(c));
  // A vector of `count` floats (default: dim); an absent one (null) stays absent.
  auto vector = [&c](Backend& b, const float* w, const float*& out, int64_t count = 0) {
    if (w == nullptr) {
      out = nullptr;
      return absl::OkStatus();
    }
    absl::StatusOr<const float*> v =
        b.UploadVector(w, count > 0 ? count : c.dim, MemoryPart::kNorms);
    if (!v.ok()) return v.status();
    out = *v;
    return absl::OkStatus();
  };
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const bool on = !p.attention_on_device.empty() && p.attention_on_device[static_cast<size_t>(l)];
    LayerPlace& place = places[static_cast<size_t>(l)];
    Backend& b = on ? *p.device : *host_;
    const LayerWeights& w = model_.layer(l);
    place.backend = &b;
    place.on_device = on;
    place.kv_slot = on ? device_slots++ : host_slots++;
    PI_RETURN_IF_ERROR(vector(b, w.attn_norm, place.attn_norm));
    PI_RETURN_IF_ERROR(vector(b, w.ffn_norm, place.ffn_norm));
    PI_RETURN_IF_ERROR(upload(b, w.attn_q, MemoryPart::kAttention, place.q));
    PI_RETURN_IF_ERROR(upload(b, w.attn_k, MemoryPart::kAttention, place.k));
    PI_RETURN_IF_ERROR(upload(b, w.attn_v, MemoryPart::kAttention, place.v));
    PI_RETURN_IF_ERROR(upload(b, w.attn_output, MemoryPart::kAttention, place.o));
    PI_RETURN_IF_ERROR(vector(b, w.attn_norm_b, place.attn_norm_b));
    PI_RETURN_IF_ERROR(vector(b, w.ffn_norm_b, place.ffn_norm_b));
    PI_RETURN_IF_ERROR(vector(b, w.attn_q_b, place.q_b, c.q_dim()));
    PI_RETURN_IF_ERROR(vector(b, w.attn_k_b, place.k_b, c.kv_dim()));
    PI_RETURN_IF_ERROR(vector(b, w.attn_v_b, place.v_b, c.kv_dim()));
    PI_RETURN_IF_ERROR(vector(b, w.attn_output_b, place.o_b));
    PI_RETURN_IF_ERROR(vector(b, w.ffn_down_b, place.ffn_down_b));
  }
  ClassifierPlace classifier;
  classifier.on_device = p.classifier_on_device;
  classifier.backend = p.classifier_on_device ? p.device.get() : host_.get();
  PI_RETURN_IF_ERROR(vector(*classifier.backend, model_.output_norm(), classifier.norm));
  PI_RETURN_IF_ERROR(vector(*classifier.backend, model_.output_norm_bias(), classifier.norm_b));
  PI_RETURN_IF_ERROR(
      upload(*classifier.backend, model_.output(), MemoryPart::kOutput, classifier.output));
  places_ = std::move(places);
  classifier_ = classifier;
  host_slots_ = host_slots;
  device_slots_ = device_slots;
  device_ = any ? std::move(p.device) : nullptr;
  return absl::OkStatus();
}

absl::StatusOr<SequenceState> Executor::CreateSequenceState(int64_t context,
                                                            DType cache_type) const {
  ModelConfig host = model_.config();
  host.n_layers = host_slots_;
  SequenceState s;
  s.context = context;
  absl::StatusOr<KvCache> kv = KvCache::Create(host, context, cache_type);
  if (!kv.ok()) return kv.status();
  s.kv = *std::move(kv);
  if (device_slots_ > 0) {
    absl::StatusOr<std::unique_ptr<KvStore>> device =
        device_->CreateKv(model_.config(), device_slots_, context, cache_type);
    if (!device.ok()) return device.status();
    s.device_kv = *std::move(device);
  }
  return s;
}

absl::Status Executor::CheckSequence(const SequenceState& s) const {
  const int64_t device = s.device_kv != nullptr ? s.device_kv->slots() : 0;
  if (s.kv.slots() != host_slots_ || device != device_slots_ ||
      (s.device_kv != nullptr && s.device_kv->context() < s.context)) {
    return absl::InternalError(absl::StrCat(
        "a sequence's KV cache holds ", s.kv.slots(), " host and ", device,
        " device layers, but the placement runs ", host_slots_, " on the host and ", device_slots_,
        " on the device (create it with Executor::CreateSequenceState)"));
  }
  return absl::OkStatus();
}

absl::Status Executor::ShiftCache(SequenceState& s, int64_t n_past, int64_t keep,
                                  int64_t discard) const {
  PI_RETURN_IF_ERROR(CheckSequence(s));
  if (model_.config().positions != PositionKind::kRope) {
    // A key holds its absolute position through the hidden state, not a rotation to undo.
    return absl::FailedPreconditionError(
        absl::StrCat("a context shift needs RoPE; architecture '", model_.config().architecture,
                     "' has learned positions: the context (", s.context, ") is full"));
  }
  // The host's check of the arguments comes first: an invalid shift changes nothing anywhere.
  PI_RETURN_IF_ERROR(s.kv.Shift(n_past, keep, discard));
  if (s.device_kv != nullptr) return device_->ShiftKv(*s.device_kv, n_past, keep, discard);
  return absl::OkStatus();
}

absl::Status Executor::ReserveDevice(int64_t tokens) {
  if (device_ == nullptr) return absl::OkStatus();
  BatchState none;
  none.capacity = tokens;
  absl::StatusOr<PassBuffers> b = Buffers(true, none, tokens);
  return b.status();
}

absl::StatusOr<Executor::PassBuffers> Executor::Buffers(bool on_device, BatchState& s,
                                                        int64_t n) const {
  if (!on_device) {
    return PassBuffers{s.x.data(), s.normed.data(),    s.q.data(),         s.k.data(),
                       s.v.data(), s.attention.data(), s.projected.data(), nullptr};
  }
  DeviceScratch& d = *scratch_;
  if (d.capacity < n) {
    // Only at the start of a pass: the previous one ended with a synchronisation, so no enqueued
    // work uses what is freed.
    const ModelConfig& c = model_.config();
    const size_t rows = static_cast<size_t>(std::max(n, s.capacity));
    for (auto [buffer, width] : {std::pair{&d.x, c.dim}, std::pair{&d.normed, c.dim},
                                 std::pair{&d.q, c.q_dim()}, std::pair{&d.k, c.kv_dim()},
                                 std::pair{&d.v, c.kv_dim()}, std::pair{&d.attention, c.q_dim()},
                                 std::pair{&d.projected, c.dim}, std::pair{&d.partial, c.dim}}) {
      buffer->Reset();
      absl::StatusOr<BackendBuffer> b = device_->Allocate(
          rows * static_cast<size_t>(width) * sizeof(float), MemoryPart::kWorkspace);
      if (!b.ok()) return b.status();
      *buffer = *std::move(b);
    }
    d.capacity = static_cast<int64_t>(rows);
  }
  return PassBuffers{d.x.floats(), d.normed.floats(),    d.q.floats(),         d.k.floats(),
                     d.v.floats(), d.attention.floats(), d.projected.floats(), d.partial.floats()};
}

absl::Status Executor::Synchronize() const {
  const auto start = std::chrono::steady_clock::now();
  const absl::Status s = device_->Synchronize();
  transfers_->wait_seconds +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ++transfers_->synchronisations;
  return s;
}

absl::Status Executor::MoveResidual(BatchState& s, bool& on_device, bool to_device,
                                    int64_t n) const {
  if (on_device == to_device) return absl::OkStatus();
  const size_t bytes = static_cast<size_t>(n * model_.config().dim) * sizeof(float);
  float* device_x = scratch_->x.floats();
  if (to_device) {
    PI_RETURN_IF_ERROR(device_->CopyIn(device_x, s.x.data(), bytes));
    ++transfers_->uploads;
  } else {
    PI_RETURN_IF_ERROR(device_->CopyOut(s.x.data(), device_x, bytes));
    PI_RETURN_IF_ERROR(Synchronize());
    ++transfers_->downloads;
  }
  on_device = to_device;
  return absl::OkStatus();
}

absl::Status Executor::Norm(Backend& backend, const float* x, int64_t rows, const float* weight,
                            const float* bias, float* out) const {
  const ModelConfig& c = model_.config();
  const float eps = static_cast<float>(c.rms_eps);
  if (c.norm == NormKind::kLayer) return backend.LayerNorm(x, weight, bias, rows, c.dim, eps, out);
  return backend.RmsNorm(x, weight, rows, c.dim, eps, out);
}

absl::Status Executor::Normalize(const LayerPlace& place, const PassBuffers& b, int64_t n,
                                 const float* weight, const float* bias, uint64_t& bytes) const {
  const ModelConfig& c = model_.config();
  PI_RETURN_IF_ERROR(Norm(*place.backend, b.x, n, weight, bias, b.normed));
  if (c.norm_act.kind == ActivationKind::kShiftedRelu) {
    PI_RETURN_IF_ERROR(place.backend->ShiftedRelu(b.normed, n * c.dim, c.norm_act.param));
  }
  bytes += static_cast<uint64_t>(c.dim) * sizeof(float) * (bias != nullptr ? 2 : 1);
  return absl::OkStatus();
}

absl::Status Executor::Attention(const LayerPlace& place, const PassBuffers& b,
                                 std::span<const BatchEntry> entries, int64_t n, bool add,
                                 uint64_t& bytes) const {
  const ModelConfig& c = model_.config();
  Backend& be = *place.backend;
  const RopeFrequencies rope_frequencies = c.Rope();
  const int64_t q_dim = c.q_dim(), kv_dim = c.kv_dim();
  PI_RETURN_IF_ERROR(be.MatMul(place.q, b.normed, n, b.q));
  PI_RETURN_IF_ERROR(be.MatMul(place.k, b.normed, n, b.k));
  PI_RETURN_IF_ERROR(be.MatMul(place.v, b.normed, n, b.v));
  if (place.q_b != nullptr) {
    PI_RETURN_IF_ERROR(be.AddBias(place.q_b, n, q_dim, b.q));
    PI_RETURN_IF_ERROR(be.AddBias(place.k_b, n, kv_dim, b.k));
    PI_RETURN_IF_ERROR(be.AddBias(place.v_b, n, kv_dim, b.v));
  }
  const bool rope = c.positions == PositionKind::kRope;  // (learned positions are in x already)
  // RoPE, the KV writes and attention per sequence, against its own cache at its positions.
  int64_t row = 0;
  for (const BatchEntry& e : entries) {
    const int64_t rows = static_cast<int64_t>(e.tokens.size());
    KvStore& kv = place.on_device ? *e.sequence->device_kv : e.sequence->kv;
    float* q = b.q + row * q_dim;
    float* k = b.k + row * kv_dim;
    if (rope) {
      PI_RETURN_IF_ERROR(be.Rope(q, rows, c.n_heads, c.head_dim, e.pos0, rope_frequencies));
      PI_RETURN_IF_ERROR(be.Rope(k, rows, c.n_kv_heads, c.head_dim, e.pos0, rope_frequencies));
    }
    PI_RETURN_IF_ERROR(be.WriteKv(kv, place.kv_slot, e.pos0, rows, k, b.v + row * kv_dim));
    PI_RETURN_IF_ERROR(be.Attend(kv, place.kv_slot, q, e.pos0, rows, b.attention + row * q_dim,
                                 &e.stats->kv_bytes));
    row += rows;
  }
  PI_RETURN_IF_ERROR(be.MatMul(place.o, b.attention, n, b.projected));
  if (place.o_b != nullptr) PI_RETURN_IF_ERROR(be.AddBias(place.o_b, n, c.dim, b.projected));
  if (add) PI_RETURN_IF_ERROR(be.Add(b.projected, n * c.dim, b.x));
  bytes += place.q.bytes() + place.k.bytes() + place.v.bytes() + place.o.bytes();
  if (place.q_b != nullptr) {
    bytes += static_cast<uint64_t>(q_dim + 2 * kv_dim + c.dim) * sizeof(float);
  }
  return absl::OkStatus();
}

absl::Status Executor::Ffn(const LayerPlace& place, const PassBuffers& b, BatchState& s,
                           std::span<const BatchEntry> entries, int64_t n, int64_t l,
                           uint64_t& bytes) const {
  const ModelConfig& c = model_.config();
  LayerFfn& layer = ffn(l);
  const bool observed = std::any_of(entries.begin(), entries.end(),
                                    [](const BatchEntry& e) { return e.observer != nullptr; });
  FfnCall call;
  call.layer = l;
  call.n = n;
  call.workspace = &s.ffn;
  call.need_activations = observed;
  call.input = b.normed;
  call.output = b.x;
  const size_t vec_bytes = static_cast<size_t>(n * c.dim) * sizeof(float);
  const bool host_parts = place.on_device && layer.has_host_parts();
  if (place.on_device) {
    // The device parts read the normed input where it is and add into the device's residual; the
    // host parts get it downloaded once (the layer's one synchronisation) and sum into a partial
    // of their own, uploaded and added on the device after them.
    call.device_input = b.normed;
    call.device_output = b.x;
    call.input = s.normed.data();
    call.output = s.projected.data();
    if (host_parts || layer.NeedsHostInput(observed)) {
      PI_RETURN_IF_ERROR(device_->CopyOut(s.normed.data(), b.normed, vec_bytes));
      PI_RETURN_IF_ERROR(Synchronize());
      ++transfers_->downloads;
    }
    if (host_parts) std::memset(s.projected.data(), 0, vec_bytes);
  }
  absl::StatusOr<uint64_t> ffn_bytes = layer.Forward(call);
  if (!ffn_bytes.ok()) return ffn_bytes.status();
  bytes += *ffn_bytes;
  if (host_parts) {
    PI_RETURN_IF_ERROR(device_->CopyIn(b.partial, s.projected.data(), vec_bytes));
    PI_RETURN_IF_ERROR(device_->Add(b.partial, n * c.dim, b.x));
    ++transfers_->uploads;
  }
  // fc2's bias, once per token whatever the layer's parts (each part adds only its neurons' sum).
  if (place.ffn_down_b != nullptr) {
    PI_RETURN_IF_ERROR(place.backend->AddBias(place.ffn_down_b, n, c.dim, b.x));
    bytes += static_cast<uint64_t>(c.dim) * sizeof(float);
  }
  if (!observed) return absl::OkStatus();
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
  return absl::OkStatus();
}

absl::Status Executor::Classify(BatchState& s, bool& on_device,
                                std::span<const BatchEntry> entries, int64_t n,
                                uint64_t& bytes) const {
  const ModelConfig& c = model_.config();
  int64_t wanting = 0;
  for (const BatchEntry& e : entries) wanting += e.logits != Logits::kNone ? 1 : 0;
  if (wanting == 0) return absl::OkStatus();
  const ClassifierPlace& place = classifier_;
  PI_RETURN_IF_ERROR(MoveResidual(s, on_device, place.on_device, n));
  absl::StatusOr<PassBuffers> b = Buffers(place.on_device, s, n);
  if (!b.ok()) return b.status();
  // Only the rows whose logits are wanted go through the final norm and the classifier: gathered
  // into `normed`, one product for all of them.
  int64_t rows = 0, row = 0;
  for (const BatchEntry& e : entries) {
    const int64_t count = static_cast<int64_t>(e.tokens.size());
    if (e.logits != Logits::kNone) {
      const int64_t first = e.logits == Logits::kAll ? 0 : count - 1;
      PI_RETURN_IF_ERROR(Norm(*place.backend, b->x + (row + first) * c.dim, count - first,
                              place.norm, place.norm_b, b->normed + rows * c.dim));
      rows += count - first;
    }
    row += count;
  }
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
  const size_t floats = static_cast<size_t>(rows) * vocab;
  if (place.on_device) {
    DeviceScratch& d = *scratch_;
    if (d.logits_floats < floats) {
      d.logits.Reset();
      absl::StatusOr<BackendBuffer> buffer =
          device_->Allocate(floats * sizeof(float), MemoryPart::kWorkspace);
      if (!buffer.ok()) return buffer.status();
      d.logits = *std::move(buffer);
      d.logits_floats = floats;
    }
    PI_RETURN_IF_ERROR(device_->MatMul(place.output, b->normed, rows, d.logits.floats()));
    PI_RETURN_IF_ERROR(device_->CopyOut(out, d.logits.floats(), floats * sizeof(float)));
    PI_RETURN_IF_ERROR(Synchronize());
    ++transfers_->downloads;
  } else {
    PI_RETURN_IF_ERROR(host_->MatMul(place.output, b->normed, rows, out));
  }
  if (wanting > 1) {
    const float* from = s.logits.data();
    for (const BatchEntry& e : entries) {
      if (e.logits == Logits::kNone) continue;
      const size_t count = e.logits == Logits::kAll ? e.tokens.size() : 1;
      std::memcpy(e.logits_out, from, count * vocab * sizeof(float));
      from += count * vocab;
    }
  }
  bytes += place.output.bytes() + static_cast<uint64_t>(c.dim) * sizeof(float);
  return absl::OkStatus();
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
    PI_RETURN_IF_ERROR(CheckSequence(*e.sequence));
    if (c.positions == PositionKind::kLearned && e.pos0 + rows > c.context_length) {
      return absl::OutOfRangeError(
          absl::StrCat("position ", e.pos0 + rows - 1, " is past the ", c.context_length,
                       " positions the model learned (architecture '", c.architecture, "')"));
    }
    n += rows;
  }
  if (n > s.capacity) {
    return absl::InternalError(
        absl::StrCat("a pass of ", n, " tokens exceeds the batch's ", s.capacity));
  }
  const cpu::MatrixView& embedding = model_.token_embedding();
  // Learned positions (OPT): x = token row + the row of its position (p + position_offset).
  const bool learned = c.positions == PositionKind::kLearned;
  const cpu::MatrixView& positions = model_.position_embedding();
  std::vector<float> position_row(learned ? static_cast<size_t>(c.dim) : 0);
  int64_t row = 0;
  for (const BatchEntry& e : entries) {
    for (size_t i = 0; i < e.tokens.size(); ++i) {
      float* x = s.x.data() + row++ * c.dim;
      cpu::DecodeRows(embedding, e.tokens[i], 1, x);
      if (learned) {
        cpu::DecodeRows(positions, e.pos0 + static_cast<int64_t>(i) + c.position_offset, 1,
                        position_row.data());
        cpu::Add(position_row.data(), c.dim, x);
      }
    }
  }
  uint64_t bytes =
      static_cast<uint64_t>(n) * (embedding.row_bytes + (learned ? positions.row_bytes : 0));
  // The device's scratch is sized before the first layer that uses it.
  if (device_ != nullptr) {
    absl::StatusOr<PassBuffers> grown = Buffers(true, s, n);
    if (!grown.ok()) return grown.status();
  }

  bool on_device = false;  // where the residual stream is
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const LayerPlace& place = places_[static_cast<size_t>(l)];
    PI_RETURN_IF_ERROR(MoveResidual(s, on_device, place.on_device, n));
    absl::StatusOr<PassBuffers> b = Buffers(place.on_device, s, n);
    if (!b.ok()) return b.status();
    PI_RETURN_IF_ERROR(Normalize(place, *b, n, place.attn_norm, place.attn_norm_b, bytes));
    // x += attention(norm(x)); a parallel layer (Falcon) keeps it aside until the FFN, whose norm
    // reads the same x, has added its own.
    PI_RETURN_IF_ERROR(Attention(place, *b, entries, n, !c.parallel_attn, bytes));
    PI_RETURN_IF_ERROR(Normalize(place, *b, n, place.ffn_norm, place.ffn_norm_b, bytes));
    PI_RETURN_IF_ERROR(Ffn(place, *b, s, entries, n, l, bytes));  // x += ffn[l](norm(x))
    if (c.parallel_attn) PI_RETURN_IF_ERROR(place.backend->Add(b->projected, n * c.dim, b->x));
  }
  PI_RETURN_IF_ERROR(Classify(s, on_device, entries, n, bytes));
  // A pass ends with its device work done (and its errors known): the next may regrow the scratch.
  if (device_ != nullptr) PI_RETURN_IF_ERROR(device_->Synchronize());
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
