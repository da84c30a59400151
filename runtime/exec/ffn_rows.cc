#include "runtime/exec/ffn_rows.h"

#include "runtime/cpu/kernels.h"

namespace pinfer {
namespace {

uint64_t RowBytes(const LayerWeights& w) {
  return w.ffn_gate.row_bytes + w.ffn_up.row_bytes + w.ffn_down_t.row_bytes;
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
  if (ids == nullptr) {
    cpu::MatMul(w.ffn_gate, x, n, gate);
    cpu::MatMul(w.ffn_up, x, n, up);
  } else {
    cpu::GatherMatMul(w.ffn_gate, ids, count, x, n, gate);
    cpu::GatherMatMul(w.ffn_up, ids, count, x, n, up);
  }
  cpu::FfnCombine(act.kind, act.param, gate, up, n * count, a);
  if (layer.firing != nullptr) layer.firing->Apply(layer.layer, gate, n * count, a);
  if (y == nullptr) return;
  if (ids == nullptr) {
    cpu::MatMulTransposedAccumulate(w.ffn_down_t, a, n, y);
  } else {
    cpu::GatherMatMulTransposedAccumulate(w.ffn_down_t, ids, count, a, n, y);
  }
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
  }
  return 0;
}

uint64_t ComputeFfnRows(const FfnRowsLayer& layer, const float* x, int64_t n,
                        const NeuronRows& rows, FfnWorkspace& ws, float* y) {
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
  }
  return 0;
}

}  // namespace pinfer
