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
#include "runtime/exec/cuda_backend.h"
#include "runtime/exec/cuda_backend_internal.h"

namespace pinfer {

class CudaFfnContext {
 public:
  CudaFfnContext(std::shared_ptr<Backend> device, cuda::Stream& stream, int64_t dim, int64_t n_ff)
      : device(std::move(device)), stream(stream), dim(dim), n_ff(n_ff) {}

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
      absl::StatusOr<cuda::PinnedHostBuffer> b = cuda::PinnedHostBuffer::Allocate(mask);
      if (!b.ok()) return b.status();
      host_mask = *std::move(b);
      const size_t ids = static_cast<size_t>(n_ff) * sizeof(int32_t);
      // Through the backend, so that the VRAM report counts them (workspace).
      for (auto [buffer, bytes] :
           {std::pair{&dev_x, vec}, std::pair{&dev_y, vec}, std::pair{&dev_mask, mask},
            std::pair{&dev_computed, counts}, std::pair{&dev_active_ids, ids},
            std::pair{&dev_active_count, sizeof(int32_t)}}) {
        buffer->Reset();
        absl::StatusOr<BackendBuffer> b = device->Allocate(bytes, MemoryPart::kWorkspace);
        if (!b.ok()) return b.status();
        *buffer = *std::move(b);
      }
      tokens_ = n;
    }
    return absl::OkStatus();
  }

  std::shared_ptr<Backend> device;  // the CUDA backend: its stream, its memory accounting
  cuda::Stream& stream;
  int64_t dim, n_ff;
  cuda::PinnedHostBuffer host_x, host_y, host_mask;
  BackendBuffer dev_x, dev_y, dev_mask;
  BackendBuffer dev_computed;                      // [n] int32
  BackendBuffer dev_active_ids, dev_active_count;  // the GPU predictor's compacted list

 private:
  int64_t tokens_ = 0;  // batch the I/O buffers hold
};

namespace {

cuda::DeviceMatrix OnDevice(const BackendMatrix& m) {
  return cuda::DeviceMatrix{m.dtype, m.rows, m.cols, m.data, m.row_bytes};
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
    Backend& device = *context_->device;
    // The part's rows of each matrix, slot j holding neuron neurons_[j].
    for (auto [matrix, view] : {std::pair{&weights_.gate, &w.ffn_gate},
                                std::pair{&weights_.up, &w.ffn_up},
                                std::pair{&weights_.down, &w.ffn_down_t}}) {
      absl::StatusOr<BackendMatrix> m = device.UploadWeight(*view, neurons_, MemoryPart::kFfn);
      if (!m.ok()) return m.status();
      *matrix = OnDevice(*m);
    }
    const size_t id_bytes = neurons_.size() * sizeof(int32_t);
    absl::StatusOr<BackendBuffer> ids = device.Allocate(id_bytes, MemoryPart::kFfn);
    if (!ids.ok()) return ids.status();
    ids_ = *std::move(ids);
    for (absl::Status s : {device.CopyIn(ids_.data(), neurons_.data(), id_bytes),
                           device.Synchronize()}) {
      if (!s.ok()) return s;
    }
    weights_.neuron_ids = static_cast<const int32_t*>(ids_.data());
    row_bytes_ = w.ffn_gate.row_bytes + w.ffn_up.row_bytes + w.ffn_down_t.row_bytes;
    for (auto* event : {&start_, &end_}) {
      absl::StatusOr<cuda::Event> e = cuda::Event::Create(/*timing=*/true);
      if (!e.ok()) return e.status();
      *event = std::make_unique<cuda::Event>(*std::move(e));
    }
    if (predictor_ != nullptr) return UploadPredictor();
    return absl::OkStatus();
  }

  // The layer's predictor, as stored (output-major W1 [rank, dim], W2 [n_ff, rank], f32 biases),
  // through the one weight upload.
  absl::Status UploadPredictor() {
    // Its shape was checked against the model when it was read (PredictorWeights::Read).
    const PredictorWeights& p = *predictor_;
    const PredictorLayer& layer = p.layers[static_cast<size_t>(layer_)];
    Backend& device = *context_->device;
    const int64_t dim = model_.config().dim, n_ff = model_.config().n_ff;
    auto upload = [&device](const cpu::MatrixView& view) {
      return device.UploadWeight(view, {}, MemoryPart::kPredictor);
    };
    absl::StatusOr<BackendMatrix> w1 =
        upload(cpu::MakeMatrixView(p.dtype, layer.rank, dim, layer.w1.data()));
    if (!w1.ok()) return w1.status();
    absl::StatusOr<BackendMatrix> w2 =
        upload(cpu::MakeMatrixView(p.dtype, n_ff, layer.rank, layer.w2.data()));
    if (!w2.ok()) return w2.status();
    absl::StatusOr<BackendMatrix> b1 = upload(cpu::MakeMatrixView(
        DType::kF32, 1, static_cast<int64_t>(layer.b1.size()), layer.b1.data()));
    if (!b1.ok()) return b1.status();
    absl::StatusOr<BackendMatrix> b2 = upload(cpu::MakeMatrixView(
        DType::kF32, 1, static_cast<int64_t>(layer.b2.size()), layer.b2.data()));
    if (!b2.ok()) return b2.status();
    gpu_predictor_.w1 = OnDevice(*w1);
    gpu_predictor_.w2 = OnDevice(*w2);
    gpu_predictor_.b1 = b1->floats();
    gpu_predictor_.b2 = b2->floats();
    gpu_predictor_.layout = cuda::PredictorLayout::kOutputMajor;
    predictor_bytes_ = w1->bytes() + w2->bytes();
    threshold_ = layer.threshold;
    return absl::OkStatus();
  }

  std::string_view device() const override { return "cuda"; }
  bool asynchronous() const override { return true; }
  bool selects_on_device() const override { return predictor_ != nullptr; }

  absl::Status Begin(const PartCall& call) override {
    CudaFfnContext& ctx = *context_;
    const int64_t n = call.n, dim = model_.config().dim, n_ff = model_.config().n_ff;
    // A device-resident call's stats are read at the part's next call, when its events are done
    // (every pass ends with a synchronisation).
    carried_ = {};
    if (deferred_n_ > 0) {
      absl::StatusOr<FfnStats> previous = Collect(deferred_n_);
      if (!previous.ok()) return previous.status();
      carried_ = *previous;
      deferred_n_ = 0;
    }
    if (absl::Status s = ctx.Reserve(n); !s.ok()) return s;
    if (computed_capacity_ < n) {
      absl::StatusOr<cuda::PinnedHostBuffer> b =
          cuda::PinnedHostBuffer::Allocate(static_cast<size_t>(n) * sizeof(int32_t));
      if (!b.ok()) return b.status();
      host_computed_ = *std::move(b);
      computed_capacity_ = n;
    }
    cuda::Stream& stream = ctx.stream;
    const size_t vec_bytes = static_cast<size_t>(n * dim) * sizeof(float);
    pending_ = {};
    // On the device: the normed input and the residual stream where they are. Otherwise through
    // the context's buffers.
    const float* x = call.on_device ? call.input : ctx.dev_x.As<float>();
    float* y = call.on_device ? call.output : ctx.dev_y.As<float>();
    uint8_t* mask = ctx.dev_mask.As<uint8_t>();
    if (absl::Status s = start_->Record(stream); !s.ok()) return s;
    if (!call.on_device) {
      std::memcpy(ctx.host_x.data(), call.input, vec_bytes);
      for (absl::Status s : {cuda::CopyToDevice(stream, ctx.dev_x.data(), ctx.host_x.data(),
                                                vec_bytes),
                             cuda::ZeroDevice(stream, y, vec_bytes)}) {
        if (!s.ok()) return s;
      }
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
      // The rows LayerFfn chose (the host predictor's), as an n_ff-byte mask per token. The host
      // selector ran on a downloaded input, after a synchronisation: no earlier copy from the
      // pinned mask is still pending.
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
      if (absl::Status s = cuda::CopyToHost(stream, host_computed_.data(), computed,
                                            static_cast<size_t>(n) * sizeof(int32_t));
          !s.ok()) {
        return s;
      }
    }
    pending_.weight_bytes = static_cast<uint64_t>(pending_.computed) * row_bytes_;
    if (absl::Status s = end_->Record(stream); !s.ok()) return s;
    if (!call.on_device) {
      if (absl::Status s = cuda::CopyToHost(stream, ctx.host_y.data(), y, vec_bytes); !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<FfnStats> Finish(const PartCall& call) override {
    CudaFfnContext& ctx = *context_;
    if (call.on_device) {
      // Nothing to wait for: the residual is the device's. The time and the device predictor's
      // counts come with the next call (Collect).
      deferred_n_ = call.n;
      FfnStats now = pending_;
      if (predictor_ != nullptr) now.computed = 0, now.weight_bytes = 0;
      now += carried_;
      return now;
    }
    if (absl::Status s = ctx.stream.Synchronize(); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("layer ", layer_, " GPU FFN: ", s.message()));
    }
    cpu::Add(ctx.host_y.As<float>(), call.n * model_.config().dim, call.output);
    absl::StatusOr<FfnStats> done = Collect(call.n);
    if (!done.ok()) return done.status();
    FfnStats result = pending_;
    if (predictor_ != nullptr) {
      result.computed = done->computed;
      result.weight_bytes = done->weight_bytes;
    }
    result.seconds = done->seconds;
    result += carried_;
    return result;
  }

 private:
  // What is known of a call of n tokens only once its work is done: its time between the part's
  // events and, with a device predictor, the neurons it computed and their bytes.
  absl::StatusOr<FfnStats> Collect(int64_t n) {
    FfnStats done;
    if (predictor_ != nullptr) {
      const int32_t* computed = host_computed_.As<int32_t>();
      for (int64_t t = 0; t < n; ++t) done.computed += computed[t];
      done.weight_bytes = static_cast<uint64_t>(done.computed) * row_bytes_ +
                          static_cast<uint64_t>(n) * predictor_bytes_;
    }
    absl::StatusOr<float> ms = cuda::Event::ElapsedMilliseconds(*start_, *end_);
    if (!ms.ok()) return ms.status();
    done.seconds = *ms / 1e3;
    return done;
  }

  std::shared_ptr<CudaFfnContext> context_;
  const Model& model_;
  int64_t layer_;
  std::vector<int32_t> neurons_;
  std::shared_ptr<const PredictorWeights> predictor_;  // null: the rows the call names
  BackendBuffer ids_;
  cuda::HotFfnWeights weights_;  // over the backend's uploads
  cuda::DevicePredictor gpu_predictor_;
  uint64_t predictor_bytes_ = 0;  // W1 and W2, read once per token
  std::unique_ptr<cuda::Event> start_, end_;  // this part's timing
  cuda::PinnedHostBuffer host_computed_;      // [n] int32: hot neurons computed per token
  int64_t computed_capacity_ = 0;
  int64_t deferred_n_ = 0;  // > 0: a device-resident call of that many tokens to collect
  FfnStats carried_;        // the previous device-resident call's, reported with this one
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

absl::StatusOr<std::shared_ptr<CudaFfnContext>> CreateCudaFfnContext(
    const Model& model, std::shared_ptr<Backend> device) {
  if (device == nullptr) {
    absl::StatusOr<std::shared_ptr<Backend>> own = CreateCudaBackend();
    if (!own.ok()) return own.status();
    device = *std::move(own);
  }
  cuda::Stream* stream = CudaStreamOf(*device);
  if (stream == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("the CUDA FFN parts need the CUDA backend, not ",
                                                   std::string(device->name())));
  }
  return std::make_shared<CudaFfnContext>(std::move(device), *stream, model.config().dim,
                                          model.config().n_ff);
}

absl::StatusOr<std::unique_ptr<PartBackend>> CreateCudaPartBackend(
    std::shared_ptr<CudaFfnContext> context, const Model& model, int64_t layer,
    std::vector<int32_t> neurons, std::shared_ptr<const PredictorWeights> predictor,
    float threshold) {
  if (context == nullptr) return absl::InvalidArgumentError("no CUDA FFN context");
  if (neurons.empty()) return absl::InvalidArgumentError("a CUDA FFN part needs neurons");
  // The device kernels compute act(gate)·up without biases.
  if (!model.config().llama_shaped()) {
    return absl::UnimplementedError(absl::StrCat(
        "the CUDA FFN part computes llama-architecture layers only, not '",
        model.config().architecture, "': run it on the CPU, without a plan's GPU part or -ngl"));
  }
  auto part = std::make_unique<CudaPartBackend>(
      std::move(context), model, layer, std::move(neurons), std::move(predictor), threshold);
  if (absl::Status s = part->Upload(); !s.ok()) {
    return absl::Status(s.code(),
                        absl::StrCat("uploading layer ", layer, "'s hot FFN rows: ", s.message()));
  }
  return part;
}

uint64_t CudaFfnUploadedBytes(const CudaFfnContext& context) {
  const PlanBytes used = context.device->used();
  return used.ffn + used.predictor;
}

}  // namespace pinfer
