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
#include "runtime/cuda/sparse_ffn.h"
#include "runtime/cuda/stream.h"
#include "runtime/exec/ffn.h"

namespace pinfer {

class CudaFfnContext {
 public:
  CudaFfnContext(cuda::Stream stream, cuda::Event start, cuda::Event end, int64_t dim, int64_t n_ff)
      : stream(std::move(stream)),
        start(std::move(start)),
        end(std::move(end)),
        dim(dim),
        n_ff(n_ff) {}

  // Grows the buffers for n tokens and parts of up to n_hot neurons. Only called between layers,
  // after the previous layer's synchronisation, so no enqueued work uses what is freed.
  absl::Status Reserve(int64_t n, int64_t n_hot) {
    if (n > tokens_) {
      const size_t vec = static_cast<size_t>(n * dim) * sizeof(float);
      const size_t mask = static_cast<size_t>(n * n_ff);
      for (auto* pinned : {&host_x, &host_y}) {
        absl::StatusOr<cuda::PinnedHostBuffer> b = cuda::PinnedHostBuffer::Allocate(vec);
        if (!b.ok()) return b.status();
        *pinned = *std::move(b);
      }
      absl::StatusOr<cuda::PinnedHostBuffer> m = cuda::PinnedHostBuffer::Allocate(mask);
      if (!m.ok()) return m.status();
      host_mask = *std::move(m);
      for (auto [device, bytes] :
           {std::pair{&dev_x, vec}, std::pair{&dev_y, vec}, std::pair{&dev_mask, mask}}) {
        absl::StatusOr<cuda::DeviceBuffer> b = cuda::DeviceBuffer::Allocate(bytes);
        if (!b.ok()) return b.status();
        *device = *std::move(b);
      }
      tokens_ = n;
      products_ = 0;  // sized for the old batch
    }
    if (n > 1 && n * n_hot > products_) {
      const size_t bytes = static_cast<size_t>(n * n_hot) * sizeof(float);
      for (auto* device : {&dev_gate, &dev_up, &dev_act}) {
        absl::StatusOr<cuda::DeviceBuffer> b = cuda::DeviceBuffer::Allocate(bytes);
        if (!b.ok()) return b.status();
        *device = *std::move(b);
      }
      products_ = n * n_hot;
    }
    return absl::OkStatus();
  }

  cuda::Stream stream;
  cuda::Event start, end;
  int64_t dim, n_ff;
  uint64_t uploaded_bytes = 0;
  cuda::PinnedHostBuffer host_x, host_y, host_mask;
  cuda::DeviceBuffer dev_x, dev_y, dev_mask, dev_gate, dev_up, dev_act;

 private:
  int64_t tokens_ = 0;    // batch the I/O buffers hold
  int64_t products_ = 0;  // floats of each of dev_gate/up/act
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

class CudaFfnPart : public FfnPart {
 public:
  CudaFfnPart(std::shared_ptr<CudaFfnContext> context, const Model& model, int64_t layer,
              std::vector<int32_t> neurons)
      : context_(std::move(context)),
        model_(model),
        layer_(layer),
        neurons_(std::move(neurons)),
        member_(static_cast<size_t>(model.config().n_ff), 0) {
    for (int32_t id : neurons_) member_[static_cast<size_t>(id)] = 1;
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
    return absl::OkStatus();
  }

  std::string_view backend() const override { return "cuda"; }
  std::span<const int32_t> neurons() const override { return neurons_; }

  absl::Status Begin(const FfnPartCall& call) override {
    CudaFfnContext& ctx = *context_;
    const ModelConfig& c = model_.config();
    const int64_t n = call.n, dim = c.dim, n_ff = c.n_ff;
    const int64_t n_hot = static_cast<int64_t>(neurons_.size());
    if (absl::Status s = ctx.Reserve(n, n_hot); !s.ok()) return s;
    cuda::Stream& stream = ctx.stream;
    const size_t vec_bytes = static_cast<size_t>(n * dim) * sizeof(float);
    std::memcpy(ctx.host_x.data(), call.input, vec_bytes);
    pending_ = {};
    if (call.active != nullptr) {
      uint8_t* mask = ctx.host_mask.As<uint8_t>();
      std::memset(mask, 0, static_cast<size_t>(n * n_ff));
      for (int64_t t = 0; t < n; ++t) {
        for (int32_t id : call.active->Token(t)) {
          mask[t * n_ff + id] = 1;
          pending_.computed_neurons += member_[static_cast<size_t>(id)];
        }
      }
    } else {
      pending_.computed_neurons = n * n_hot;
    }
    pending_.weight_bytes = static_cast<uint64_t>(pending_.computed_neurons) * row_bytes_;

    const cuda::FfnActivation act = ToKernelActivation(c.ffn_act.kind);
    const float param = c.ffn_act.param;
    float* x = ctx.dev_x.As<float>();
    float* y = ctx.dev_y.As<float>();
    for (absl::Status s :
         {ctx.start.Record(stream), cuda::CopyToDevice(stream, x, ctx.host_x.data(), vec_bytes),
          cuda::ZeroDevice(stream, y, vec_bytes)}) {
      if (!s.ok()) return s;
    }
    if (call.active != nullptr) {
      uint8_t* mask = ctx.dev_mask.As<uint8_t>();
      if (absl::Status s =
              cuda::CopyToDevice(stream, mask, ctx.host_mask.data(), static_cast<size_t>(n * n_ff));
          !s.ok()) {
        return s;
      }
      for (int64_t t = 0; t < n; ++t) {
        if (absl::Status s = cuda::HotSparseFfn(stream, weights_, act, param, x + t * dim,
                                                mask + t * n_ff, y + t * dim);
            !s.ok()) {
          return s;
        }
      }
    } else if (n == 1) {
      if (absl::Status s = cuda::HotSparseFfn(stream, weights_, act, param, x, nullptr, y);
          !s.ok()) {
        return s;
      }
    } else {
      // A prompt batch over every hot neuron: dense products over the gathered rows.
      float* gate = ctx.dev_gate.As<float>();
      float* up = ctx.dev_up.As<float>();
      float* a = ctx.dev_act.As<float>();
      for (absl::Status s : {cuda::MatMul(stream, weights_.gate, x, n, gate),
                             cuda::MatMul(stream, weights_.up, x, n, up),
                             cuda::FfnCombine(stream, act, param, gate, up, n * n_hot, a),
                             cuda::MatMulTransposedAccumulate(stream, weights_.down, a, n, y)}) {
        if (!s.ok()) return s;
      }
    }
    for (absl::Status s :
         {ctx.end.Record(stream), cuda::CopyToHost(stream, ctx.host_y.data(), y, vec_bytes)}) {
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<FfnPartStats> Finish(const FfnPartCall& call) override {
    CudaFfnContext& ctx = *context_;
    if (absl::Status s = ctx.stream.Synchronize(); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("layer ", layer_, " GPU FFN: ", s.message()));
    }
    cpu::Add(ctx.host_y.As<float>(), call.n * model_.config().dim, call.output);
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
  std::vector<uint8_t> member_;
  cuda::DeviceBuffer gate_, up_, down_, ids_;
  cuda::HotFfnWeights weights_;
  uint64_t row_bytes_ = 0;
  FfnPartStats pending_;
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

absl::StatusOr<std::unique_ptr<FfnPart>> CreateCudaFfnPart(std::shared_ptr<CudaFfnContext> context,
                                                           const Model& model, int64_t layer,
                                                           std::vector<int32_t> neurons) {
  if (context == nullptr) return absl::InvalidArgumentError("no CUDA FFN context");
  if (neurons.empty()) return absl::InvalidArgumentError("a CUDA FFN part needs neurons");
  auto part = std::make_unique<CudaFfnPart>(std::move(context), model, layer, std::move(neurons));
  if (absl::Status s = part->Upload(); !s.ok()) {
    return absl::Status(s.code(),
                        absl::StrCat("uploading layer ", layer, "'s hot FFN rows: ", s.message()));
  }
  return part;
}

uint64_t CudaFfnUploadedBytes(const CudaFfnContext& context) { return context.uploaded_bytes; }

}  // namespace pinfer
