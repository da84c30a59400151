#include "runtime/exec/ffn_rows.h"

#include <cmath>
#include <vector>

#include "runtime/cpu/kernels.h"
#include "runtime/cpu/layer_norm.h"

namespace pinfer {
namespace {

uint64_t RowBytes(const LayerWeights& w) {
  return w.ffn_gate.row_bytes + w.ffn_up.row_bytes + w.ffn_down_t.row_bytes;
}

// fc1's bias (a gate-less FFN with biases): gate[t, j] += b[ids[j]] (null ids: b[j]).
void AddGateBias(const LayerWeights& w, const int32_t* ids, int64_t count, int64_t n, float* gate) {
  if (w.ffn_gate_b == nullptr) return;
  if (ids == nullptr) {
    cpu::AddBias(w.ffn_gate_b, n, count, gate);
    return;
  }
  for (int64_t t = 0; t < n; ++t) {
    float* row = gate + t * count;
    for (int64_t j = 0; j < count; ++j) row[j] += w.ffn_gate_b[ids[j]];
  }
}

// a = act(g)·u for a gated FFN, act(g) for a gate-less one (no up: u is 1), over m values.
void Activate(const Activation& act, bool gated, const float* gate, const float* up, int64_t m,
              float* a) {
  if (gated) {
    cpu::FfnCombine(act.kind, act.param, gate, up, m, a);
    return;
  }
  for (int64_t i = 0; i < m; ++i) a[i] = ActivationGate(act.kind, act.param, gate[i]);
}

// One list of `count` neurons (null ids: all of them, with the dense kernels) for n tokens.
void ComputeList(const FfnRowsLayer& layer, const int32_t* ids, int64_t count, const float* x,
                 int64_t n, FfnWorkspace& ws, float* y) {
  if (count == 0) return;
  const Activation& act = layer.model->config().ffn_act;
  const LayerWeights& w = layer.model->layer(layer.layer);
  float* gate = ws.gate.data();
  float* up = ws.up.data();
  float* a = ws.activations.data();
  const bool gated = layer.model->config().ffn_gated;
  if (ids == nullptr) {
    cpu::MatMul(w.ffn_gate, x, n, gate);
    if (gated) cpu::MatMul(w.ffn_up, x, n, up);
  } else {
    cpu::GatherMatMul(w.ffn_gate, ids, count, x, n, gate);
    if (gated) cpu::GatherMatMul(w.ffn_up, ids, count, x, n, up);
  }
  AddGateBias(w, ids, count, n, gate);
  Activate(act, gated, gate, up, n * count, a);
  if (layer.firing != nullptr) layer.firing->Apply(layer.layer, gate, n * count, a);
  if (y == nullptr) return;
  if (ids == nullptr) {
    cpu::MatMulTransposedAccumulate(w.ffn_down_t, a, n, y);
  } else {
    cpu::GatherMatMulTransposedAccumulate(w.ffn_down_t, ids, count, a, n, y);
  }
}

// Gate-first: every gate row of `ids` (null: all `count` neurons), then up and down for the
// neurons that fire for some token (the union: a neuron computed for a token where it does not
// fire is zeroed, so the output is exact). Returns the bytes read; `fired` gets Σ over tokens.
uint64_t ComputeGateFirst(const FfnRowsLayer& layer, const int32_t* ids, int64_t count,
                          const float* x, int64_t n, FfnWorkspace& ws, float* y, int64_t* fired) {
  const Activation& act = layer.model->config().ffn_act;
  const LayerWeights& w = layer.model->layer(layer.layer);
  float* gate = ws.gate.data();
  if (ids == nullptr) {
    cpu::MatMul(w.ffn_gate, x, n, gate);
  } else {
    cpu::GatherMatMul(w.ffn_gate, ids, count, x, n, gate);
  }
  AddGateBias(w, ids, count, n, gate);
  const FiringThresholds* firing = layer.firing;
  const float tau = firing != nullptr && firing->calibrated()
                        ? firing->per_layer[static_cast<size_t>(layer.layer)]
                        : -1.0f;
  // Which neurons fire for which token, and the union of those that fire for any (in slot order,
  // so ascending rows).
  ws.fires.resize(static_cast<size_t>(n * count));
  thread_local std::vector<int32_t> slots;
  slots.clear();
  ws.fired.clear();
  int64_t fired_sum = 0;
  for (int64_t j = 0; j < count; ++j) {
    bool any = false;
    for (int64_t t = 0; t < n; ++t) {
      const float v = ActivationGate(act.kind, act.param, gate[t * count + j]);
      const bool fires = tau >= 0.0f ? std::fabs(v) > tau : v != 0.0f;
      ws.fires[static_cast<size_t>(t * count + j)] = fires;
      any = any || fires;
      fired_sum += fires;
    }
    if (any) {
      slots.push_back(static_cast<int32_t>(j));
      ws.fired.push_back(ids == nullptr ? static_cast<int32_t>(j) : ids[j]);
    }
  }
  if (fired != nullptr) *fired = fired_sum;
  const int64_t k = static_cast<int64_t>(ws.fired.size());
  const uint64_t gate_bytes = static_cast<uint64_t>(count) * w.ffn_gate.row_bytes;
  if (k == 0) return gate_bytes;
  // The fired neurons' gate products, compacted [n, k], become their activations in place.
  float* a = ws.activations.data();
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t m = 0; m < k; ++m) a[t * k + m] = gate[t * count + slots[static_cast<size_t>(m)]];
  }
  // A gate-less FFN has no up rows: the fired neurons' fc1 products are all there is.
  const bool gated = layer.model->config().ffn_gated;
  if (gated) cpu::GatherMatMul(w.ffn_up, ws.fired.data(), k, x, n, ws.up.data());
  Activate(act, gated, a, ws.up.data(), n * k, a);
  if (n > 1 || tau >= 0.0f) {
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t m = 0; m < k; ++m) {
        if (!ws.fires[static_cast<size_t>(t * count + slots[static_cast<size_t>(m)])]) {
          a[t * k + m] = 0.0f;
        }
      }
    }
  }
  if (y != nullptr) {
    cpu::GatherMatMulTransposedAccumulate(w.ffn_down_t, ws.fired.data(), k, a, n, y);
  }
  return gate_bytes + static_cast<uint64_t>(k) * (w.ffn_up.row_bytes + w.ffn_down_t.row_bytes);
}

}  // namespace

int64_t NeuronRows::Computed(int64_t n, int64_t n_ff) const {
  switch (kind) {
    case Kind::kAll:
      return n * n_ff;
    case Kind::kBatch:
      return n * static_cast<int64_t>(batch.size());
    case Kind::kPerToken:
      return static_cast<int64_t>(per_token->ids.size());
    case Kind::kGateFirst:
      return n * (batch.empty() ? n_ff : static_cast<int64_t>(batch.size()));
  }
  return 0;
}

uint64_t ComputeFfnRows(const FfnRowsLayer& layer, const float* x, int64_t n,
                        const NeuronRows& rows, FfnWorkspace& ws, float* y, int64_t* fired) {
  const ModelConfig& c = layer.model->config();
  const uint64_t row_bytes = RowBytes(layer.model->layer(layer.layer));
  switch (rows.kind) {
    case NeuronRows::Kind::kAll:
      ComputeList(layer, nullptr, c.n_ff, x, n, ws, y);
      return static_cast<uint64_t>(c.n_ff) * row_bytes;
    case NeuronRows::Kind::kBatch: {
      const int64_t count = static_cast<int64_t>(rows.batch.size());
      ComputeList(layer, rows.batch.data(), count, x, n, ws, y);
      return static_cast<uint64_t>(count) * row_bytes;
    }
    case NeuronRows::Kind::kPerToken: {
      uint64_t bytes = 0;
      for (int64_t t = 0; t < n; ++t) {
        const std::span<const int32_t> ids = rows.per_token->Token(t);
        const int64_t count = static_cast<int64_t>(ids.size());
        ComputeList(layer, ids.data(), count, x + t * c.dim, 1, ws,
                    y == nullptr ? nullptr : y + t * c.dim);
        bytes += static_cast<uint64_t>(count) * row_bytes;
      }
      return bytes;
    }
    case NeuronRows::Kind::kGateFirst:
      return rows.batch.empty()
                 ? ComputeGateFirst(layer, nullptr, c.n_ff, x, n, ws, y, fired)
                 : ComputeGateFirst(layer, rows.batch.data(),
                                    static_cast<int64_t>(rows.batch.size()), x, n, ws, y, fired);
  }
  return 0;
}

}  // namespace pinfer
