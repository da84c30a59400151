// cuda_ffn_part.h over pinfer_cuda (built when PINFER_CUDA is on).
#include "runtime/exec/cuda_ffn_part.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cuda/buffers.h"
#include "runtime/cuda/device.h"
#include "runtime/cuda/kernels.h"
#include "runtime/cuda/predictor.h"
#include "runtime/cuda/sparse_ffn.h"
#include "runtime/cuda/stream.h"

namespace pinfer {

class CudaFfnContext {
 public:
  CudaFfnContext(cuda::Stream stream, cuda::Event start, cuda::Event end, int64_t dim, int64_t n_ff)
      : stream(std::move(stream)),
        start(std::move(start)),
        end(std::move(end)),
        dim(dim),
        n_ff(n_ff) {}

  // Grows the buffers for n tokens. Only called between layers,
  // after the previous layer's synchronisation, so no enqueued work uses what is freed.
  absl::Status Reserve(int64_t n) {
    if (n > tokens_) {
      const size_t vec = static_cast<size_t>(n * dim) * sizeof(float);
      const size_t mask = static_cast<size_t>(n * n_ff);
      for (auto* pinned : {&host_x, &host_y}) {
        absl::StatusOr<cuda::PinnedHostBuffer> b = cuda::PinnedHostBuffer::Allocate(vec);
        if (!b.ok()) return b.status();
        *pinned = *std::move(b);
      }
      const size_t counts = static_cast<size_t>(n) * sizeof(int32_t);
      for (auto [pinned, bytes] :
           {std::pair{&host_mask, mask}, std::pair{&host_computed, counts}}) {
        absl::StatusOr<cuda::PinnedHostBuffer> b = cuda::PinnedHostBuffer::Allocate(bytes);
        if (!b.ok()) return b.status();
        *pinned = *std::move(b);
      }
      const size_t ids = static_cast<size_t>(n_ff) * sizeof(int32_t);
      for (auto [device, bytes] :
           {std::pair{&dev_x, vec}, std::pair{&dev_y, vec}, std::pair{&dev_mask, mask},
            std::pair{&dev_computed, counts}, std::pair{&dev_active_ids, ids},
            std::pair{&dev_active_count, sizeof(int32_t)}}) {
        absl::StatusOr<cuda::DeviceBuffer> b = cuda::DeviceBuffer::Allocate(bytes);
        if (!b.ok()) return b.status();
        *device = *std::move(b);
      }
      tokens_ = n;
    }
    return absl::OkStatus();
  }

  cuda::Stream stream;
  cuda::Event start, end;
  int64_t dim, n_ff;
  uint64_t uploaded_bytes = 0;
  cuda::PinnedHostBuffer host_x, host_y, host_mask;
  cuda::PinnedHostBuffer host_computed;  // [n] int32: hot neurons computed per token
  cuda::DeviceBuffer dev_x, dev_y, dev_mask;
  cuda::DeviceBuffer dev_computed;                      // [n] int32
  cuda::DeviceBuffer dev_active_ids, dev_active_count;  // the GPU predictor's compacted list

 private:
  int64_t tokens_ = 0;  // batch the I/O buffers hold
};

namespace {

// The listed rows of a mapped weight matrix, uploaded contiguously in list order.
absl::StatusOr<cuda::DeviceBuffer> UploadRows(cuda::Stream& stream, const cpu::MatrixView& w,
                                              const std::vector<int32_t>& rows,
                                              std::vector<uint8_t>& staging) {
  staging.resize(rows.size() * w.row_bytes);
  for (size_t j = 0; j < rows.size(); ++j) {
    std::memcpy(staging.data() + j * w.row_bytes, w.Row(rows[j]), w.row_bytes);
  }
  absl::StatusOr<cuda::DeviceBuffer> buffer = cuda::DeviceBuffer::Allocate(staging.size());
  if (!buffer.ok()) return buffer.status();
  if (absl::Status s = cuda::CopyToDevice(stream, buffer->data(), staging.data(), staging.size());
      !s.ok()) {
    return s;
  }
  // The staging vector is reused for the next matrix: wait for this copy.
  if (absl::Status s = stream.Synchronize(); !s.ok()) return s;
  return buffer;
}

class CudaPartBackend : public PartBackend {
 public:
  CudaPartBackend(std::shared_ptr<CudaFfnContext> context, const Model& model, int64_t layer,
                  std::vector<int32_t> neurons, std::shared_ptr<const PredictorWeights> predictor,
                  float threshold)
      : context_(std::move(context)),
        model_(model),
        layer_(layer),
        neurons_(std::move(neurons)),
        predictor_(std::move(predictor)) {
    const Activation& act = model.config().ffn_act;
    rule_ = {act.kind, act.param, threshold};
  }

  absl::Status Upload() {
    const LayerWeights& w = model_.layer(layer_);
    cuda::Stream& stream = context_->stream;
    std::vector<uint8_t> staging;
    for (auto [buffer, view] : {std::pair{&gate_, &w.ffn_gate}, std::pair{&up_, &w.ffn_up},
                                std::pair{&down_, &w.ffn_down_t}}) {
      absl::StatusOr<cuda::DeviceBuffer> b = UploadRows(stream, *view, neurons_, staging);
      if (!b.ok()) return b.status();
      *buffer = *std::move(b);
      context_->uploaded_bytes += buffer->size();
    }
    absl::StatusOr<cuda::DeviceBuffer> ids =
        cuda::DeviceBuffer::Allocate(neurons_.size() * sizeof(int32_t));
    if (!ids.ok()) return ids.status();
    ids_ = *std::move(ids);
    if (absl::Status s = cuda::CopyToDevice(stream, ids_.data(), neurons_.data(), ids_.size());
        !s.ok()) {
      return s;
    }
    if (absl::Status s = stream.Synchronize(); !s.ok()) return s;
    const int64_t n_hot = static_cast<int64_t>(neurons_.size());
    const int64_t dim = model_.config().dim;
    weights_.gate = cuda::MakeDeviceMatrix(w.ffn_gate.dtype, n_hot, dim, gate_.data());
    weights_.up = cuda::MakeDeviceMatrix(w.ffn_up.dtype, n_hot, dim, up_.data());
    weights_.down = cuda::MakeDeviceMatrix(w.ffn_down_t.dtype, n_hot, dim, down_.data());
    weights_.neuron_ids = ids_.As<int32_t>();
    row_bytes_ = w.ffn_gate.row_bytes + w.ffn_up.row_bytes + w.ffn_down_t.row_bytes;
    if (predictor_ != nullptr) return UploadPredictor();
    return absl::OkStatus();
  }

  // The layer's predictor, as stored (output-major W1 [rank, dim], W2 [n_ff, rank], f32 biases).
  absl::Status UploadPredictor() {
    // Its shape was checked against the model when it was read (PredictorWeights::Read).
    const PredictorWeights& p = *predictor_;
    const PredictorLayer& layer = p.layers[static_cast<size_t>(layer_)];
    cuda::Stream& stream = context_->stream;
    struct Piece {
      cuda::DeviceBuffer* buffer;
      const void* data;
      size_t bytes;
    };
    for (const Piece& piece : {Piece{&predictor_w1_, layer.w1.data(), layer.w1.size()},
                               Piece{&predictor_w2_, layer.w2.data(), layer.w2.size()},
                               Piece{&predictor_b1_, layer.b1.data(), layer.b1.size_bytes()},
                               Piece{&predictor_b2_, layer.b2.data(), layer.b2.size_bytes()}}) {
      absl::StatusOr<cuda::DeviceBuffer> b = cuda::DeviceBuffer::Allocate(piece.bytes);
      if (!b.ok()) return b.status();
      *piece.buffer = *std::move(b);
      if (absl::Status s =
              cuda::CopyToDevice(stream, piece.buffer->data(), piece.data, piece.bytes);
          !s.ok()) {
        return s;
      }
      context_->uploaded_bytes += piece.bytes;
    }
    if (absl::Status s = stream.Synchronize(); !s.ok()) return s;
    const int64_t dim = model_.config().dim, n_ff = model_.config().n_ff;
    gpu_predictor_.w1 = cuda::MakeDeviceMatrix(p.dtype, layer.rank, dim, predictor_w1_.data());
    gpu_predictor_.w2 = cuda::MakeDeviceMatrix(p.dtype, n_ff, layer.rank, predictor_w2_.data());
    gpu_predictor_.b1 = predictor_b1_.As<float>();
    gpu_predictor_.b2 = predictor_b2_.As<float>();
    gpu_predictor_.layout = cuda::PredictorLayout::kOutputMajor;
    threshold_ = layer.threshold;
    return absl::OkStatus();
  }

  std::string_view device() const override { return "cuda"; }
  bool asynchronous() const override { return true; }
  bool selects_on_device() const override { return predictor_ != nullptr; }

  absl::Status Begin(const PartCall& call) override {
    CudaFfnContext& ctx = *context_;
    const int64_t n = call.n, dim = model_.config().dim, n_ff = model_.config().n_ff;
    if (absl::Status s = ctx.Reserve(n); !s.ok()) return s;
    cuda::Stream& stream = ctx.stream;
    const size_t vec_bytes = static_cast<size_t>(n * dim) * sizeof(float);
    std::memcpy(ctx.host_x.data(), call.input, vec_bytes);
    pending_ = {};
    float* x = ctx.dev_x.As<float>();
    float* y = ctx.dev_y.As<float>();
    uint8_t* mask = ctx.dev_mask.As<uint8_t>();
    for (absl::Status s :
         {ctx.start.Record(stream), cuda::CopyToDevice(stream, x, ctx.host_x.data(), vec_bytes),
          cuda::ZeroDevice(stream, y, vec_bytes)}) {
      if (!s.ok()) return s;
    }
    const uint8_t* masks = nullptr;
    int32_t* computed = nullptr;
    if (predictor_ != nullptr) {
      // The layer's predictor on the GPU decides for the hot rows: only hidden states cross the
      // bus. Counted on the device; Finish adds the counts up.
      for (int64_t t = 0; t < n; ++t) {
        if (absl::Status s = cuda::PredictActiveNeurons(
                stream, gpu_predictor_, x + t * dim, threshold_, ctx.dev_active_ids.As<int32_t>(),
                ctx.dev_active_count.As<int32_t>(), mask + t * n_ff);
            !s.ok()) {
          return s;
        }
      }
      masks = mask;
      computed = ctx.dev_computed.As<int32_t>();
    } else if (call.rows.kind != NeuronRows::Kind::kAll) {
      // The rows LayerFfn chose (the host predictor's), as an n_ff-byte mask per token.
      uint8_t* host = ctx.host_mask.As<uint8_t>();
      std::memset(host, 0, static_cast<size_t>(n * n_ff));
      for (int64_t t = 0; t < n; ++t) {
        const std::span<const int32_t> ids = call.rows.kind == NeuronRows::Kind::kBatch
                                                 ? call.rows.batch
                                                 : call.rows.per_token->Token(t);
        for (int32_t id : ids) host[t * n_ff + id] = 1;
      }
      pending_.computed = call.rows.Computed(n, n_ff);
      if (absl::Status s = cuda::CopyToDevice(stream, mask, host, static_cast<size_t>(n * n_ff));
          !s.ok()) {
        return s;
      }
      masks = mask;
    } else {
      pending_.computed = n * static_cast<int64_t>(neurons_.size());
    }
    if (absl::Status s = cuda::HotFfn(stream, weights_, rule_, x, n, masks, n_ff, y, computed);
        !s.ok()) {
      return s;
    }
    if (computed != nullptr) {
      if (absl::Status s = cuda::CopyToHost(stream, ctx.host_computed.data(), computed,
                                            static_cast<size_t>(n) * sizeof(int32_t));
          !s.ok()) {
        return s;
      }
    }
    pending_.weight_bytes = static_cast<uint64_t>(pending_.computed) * row_bytes_;
    for (absl::Status s :
         {ctx.end.Record(stream), cuda::CopyToHost(stream, ctx.host_y.data(), y, vec_bytes)}) {
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<FfnStats> Finish(const PartCall& call) override {
    CudaFfnContext& ctx = *context_;
    if (absl::Status s = ctx.stream.Synchronize(); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("layer ", layer_, " GPU FFN: ", s.message()));
    }
    cpu::Add(ctx.host_y.As<float>(), call.n * model_.config().dim, call.output);
    if (predictor_ != nullptr) {
      const int32_t* computed = ctx.host_computed.As<int32_t>();
      for (int64_t t = 0; t < call.n; ++t) pending_.computed += computed[t];
      pending_.weight_bytes =
          static_cast<uint64_t>(pending_.computed) * row_bytes_ +
          static_cast<uint64_t>(call.n) * (predictor_w1_.size() + predictor_w2_.size());
    }
    absl::StatusOr<float> ms = cuda::Event::ElapsedMilliseconds(ctx.start, ctx.end);
    if (!ms.ok()) return ms.status();
    pending_.seconds = *ms / 1e3;
    return pending_;
  }

 private:
  std::shared_ptr<CudaFfnContext> context_;
  const Model& model_;
  int64_t layer_;
  std::vector<int32_t> neurons_;
  std::shared_ptr<const PredictorWeights> predictor_;  // null: the rows the call names
  cuda::DeviceBuffer gate_, up_, down_, ids_;
  cuda::HotFfnWeights weights_;
  cuda::DeviceBuffer predictor_w1_, predictor_w2_, predictor_b1_, predictor_b2_;
  cuda::DevicePredictor gpu_predictor_;
  float threshold_ = 0.5f;
  uint64_t row_bytes_ = 0;
  cuda::HotFfnRule rule_;
  FfnStats pending_;
};

}  // namespace

bool CudaBackendBuilt() { return true; }

absl::Status CheckCudaAvailable() { return cuda::CheckDeviceAvailable(); }

absl::StatusOr<std::string> DescribeCudaDevice() {
  absl::StatusOr<int> device = cuda::CurrentDevice();
  if (!device.ok()) return device.status();
  absl::StatusOr<cuda::DeviceInfo> info = cuda::GetDeviceInfo(*device);
  if (!info.ok()) return info.status();
  return cuda::DescribeDevice(*info);
}

absl::StatusOr<std::shared_ptr<CudaFfnContext>> CreateCudaFfnContext(const Model& model) {
  if (absl::Status s = cuda::CheckDeviceAvailable(); !s.ok()) return s;
  absl::StatusOr<cuda::Stream> stream = cuda::Stream::Create();
  if (!stream.ok()) return stream.status();
  absl::StatusOr<cuda::Event> start = cuda::Event::Create(/*timing=*/true);
  if (!start.ok()) return start.status();
  absl::StatusOr<cuda::Event> end = cuda::Event::Create(/*timing=*/true);
  if (!end.ok()) return end.status();
  return std::make_shared<CudaFfnContext>(*std::move(stream), *std::move(start), *std::move(end),
                                          model.config().dim, model.config().n_ff);
}

absl::StatusOr<std::unique_ptr<PartBackend>> CreateCudaPartBackend(
    std::shared_ptr<CudaFfnContext> context, const Model& model, int64_t layer,
    std::vector<int32_t> neurons, std::shared_ptr<const PredictorWeights> predictor,
    float threshold) {
  if (context == nullptr) return absl::InvalidArgumentError("no CUDA FFN context");
  if (neurons.empty()) return absl::InvalidArgumentError("a CUDA FFN part needs neurons");
  auto part = std::make_unique<CudaPartBackend>(
      std::move(context), model, layer, std::move(neurons), std::move(predictor), threshold);
  if (absl::Status s = part->Upload(); !s.ok()) {
    return absl::Status(s.code(),
                        absl::StrCat("uploading layer ", layer, "'s hot FFN rows: ", s.message()));
  }
  return part;
}

uint64_t CudaFfnUploadedBytes(const CudaFfnContext& context) { return context.uploaded_bytes; }

}  // namespace pinfer
