// pinfer-cuda-bench: throughput of the CUDA kernels at Llama shapes, against the device's own
// copy bandwidth measured in the same run.
//   - mat-vec (decode) per weight dtype: GB/s of weights read;
//   - the down projection (transposed accumulate) per dtype;
//   - the hot-neuron sparse FFN at 10% predicted density against the dense FFN (same layer);
//   - the predictor MLP, decode attention over the KV cache, and prefill GEMMs.
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "bench/cuda/bench_util.h"
#include "nlohmann/json.hpp"
#include "runtime/common/cli_common.h"
#include "runtime/cuda/attention.h"
#include "runtime/cuda/device.h"
#include "runtime/cuda/predictor.h"
#include "runtime/cuda/sparse_ffn.h"

namespace pinfer::cuda::bench {
namespace {

constexpr char kProgram[] = "pinfer-cuda-bench";
constexpr DType kDTypes[] = {DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0, DType::kF32};

struct ModelShape {
  const char* name;
  int64_t dim, n_ff, n_heads, vocab;
};
constexpr ModelShape kShapes[] = {{"7b", 4096, 11008, 32, 32000}, {"13b", 5120, 13824, 40, 32000}};

struct Result {
  std::string op;
  std::string dtype;
  std::string shape;
  double micros = 0;
  double bytes = 0;  // bytes the operation must read (weights, caches)
  double flops = 0;  // for compute-bound operations
  std::string note;
};

class Runner {
 public:
  Runner(Stream& stream, int iterations, std::string filter)
      : stream_(stream), iterations_(iterations), filter_(std::move(filter)) {}

  bool Wanted(const std::string& op) const {
    return filter_.empty() || absl::StrContains(op, filter_);
  }

  // Times `op` and records it; returns the time in microseconds.
  absl::StatusOr<double> Run(Result result, const std::function<absl::Status()>& op) {
    absl::StatusOr<double> micros = TimeMicros(stream_, /*warmup=*/3, iterations_, op);
    if (!micros.ok()) return micros.status();
    result.micros = *micros;
    results_.push_back(result);
    return *micros;
  }

  std::vector<Result>& results() { return results_; }
  Stream& stream() { return stream_; }

 private:
  Stream& stream_;
  int iterations_;
  std::string filter_;
  std::vector<Result> results_;
};

std::string Shape2(int64_t rows, int64_t cols) { return absl::StrFormat("%dx%d", rows, cols); }

absl::Status BenchCopy(Runner& runner) {
  constexpr size_t kBytes = size_t{1} << 30;
  absl::StatusOr<DeviceBuffer> a = DeviceBuffer::Allocate(kBytes);
  if (!a.ok()) return a.status();
  absl::StatusOr<DeviceBuffer> b = DeviceBuffer::Allocate(kBytes);
  if (!b.ok()) return b.status();
  Stream& stream = runner.stream();
  return runner
      .Run({"copy (baseline)", "-", "1 GiB", 0, 2.0 * kBytes, 0, "device to device, read + write"},
           [&] { return CopyOnDevice(stream, b->data(), a->data(), kBytes); })
      .status();
}

absl::Status BenchMatVec(Runner& runner, const ModelShape& m) {
  Stream& stream = runner.stream();
  const struct {
    const char* what;
    int64_t rows, cols;
  } shapes[] = {{"attention q/k/v/o", m.dim, m.dim},
                {"ffn gate/up", m.n_ff, m.dim},
                {"output", m.vocab, m.dim}};
  for (DType dtype : kDTypes) {
    for (const auto& s : shapes) {
      absl::StatusOr<DeviceWeights> w =
          RandomDeviceWeights(stream, dtype, s.rows, s.cols, 1, 0.02f);
      if (!w.ok()) return w.status();
      absl::StatusOr<DeviceBuffer> x = RandomDeviceVector(stream, s.cols, 2);
      if (!x.ok()) return x.status();
      absl::StatusOr<DeviceBuffer> y = DeviceBuffer::Allocate(s.rows * sizeof(float));
      if (!y.ok()) return y.status();
      absl::StatusOr<double> t =
          runner.Run({"matvec", std::string(DTypeName(dtype)), Shape2(s.rows, s.cols), 0,
                      static_cast<double>(w->bytes()), 0, s.what},
                     [&] { return MatVec(stream, w->matrix, x->As<float>(), y->As<float>()); });
      if (!t.ok()) return t.status();
    }
    absl::StatusOr<DeviceWeights> down =
        RandomDeviceWeights(stream, dtype, m.n_ff, m.dim, 3, 0.02f);
    if (!down.ok()) return down.status();
    absl::StatusOr<DeviceBuffer> a = RandomDeviceVector(stream, m.n_ff, 4);
    if (!a.ok()) return a.status();
    absl::StatusOr<DeviceBuffer> y = RandomDeviceVector(stream, m.dim, 5);
    if (!y.ok()) return y.status();
    absl::StatusOr<double> t = runner.Run(
        {"transposed accumulate", std::string(DTypeName(dtype)), Shape2(m.n_ff, m.dim), 0,
         static_cast<double>(down->bytes()), 0, "ffn down (neuron-major), dense"},
        [&] {
          return MatVecTransposedAccumulate(stream, down->matrix, a->As<float>(), y->As<float>());
        });
    if (!t.ok()) return t.status();
  }
  return absl::OkStatus();
}

// One FFN layer with every neuron resident (n_hot = n_ff): the dense FFN, the same layer through
// the sparse path with every neuron active, and with 10% active.
absl::Status BenchSparseFfn(Runner& runner, const ModelShape& m, double density) {
  Stream& stream = runner.stream();
  std::vector<int32_t> ids(static_cast<size_t>(m.n_ff));
  for (int64_t i = 0; i < m.n_ff; ++i) ids[i] = static_cast<int32_t>(i);
  std::vector<uint8_t> mask(static_cast<size_t>(m.n_ff));
  std::mt19937 rng(7);
  std::bernoulli_distribution active(density);
  int64_t n_active = 0;
  for (uint8_t& v : mask) {
    v = active(rng) ? 1 : 0;
    n_active += v;
  }
  absl::StatusOr<DeviceBuffer> d_ids = DeviceBuffer::Allocate(ids.size() * sizeof(int32_t));
  if (!d_ids.ok()) return d_ids.status();
  absl::StatusOr<DeviceBuffer> d_mask = DeviceBuffer::Allocate(mask.size());
  if (!d_mask.ok()) return d_mask.status();
  if (absl::Status s = CopyToDevice(stream, d_ids->data(), ids.data(), d_ids->size()); !s.ok()) {
    return s;
  }
  if (absl::Status s = CopyToDevice(stream, d_mask->data(), mask.data(), mask.size()); !s.ok()) {
    return s;
  }
  absl::StatusOr<DeviceBuffer> x = RandomDeviceVector(stream, m.dim, 8);
  if (!x.ok()) return x.status();
  absl::StatusOr<DeviceBuffer> y = RandomDeviceVector(stream, m.dim, 9);
  if (!y.ok()) return y.status();
  absl::StatusOr<DeviceBuffer> scratch = DeviceBuffer::Allocate(3 * m.n_ff * sizeof(float));
  if (!scratch.ok()) return scratch.status();
  float* g = scratch->As<float>();
  float* u = g + m.n_ff;
  float* a = u + m.n_ff;

  for (DType dtype : kDTypes) {
    const float scale = 1.0f / std::sqrt(static_cast<float>(m.dim));
    absl::StatusOr<DeviceWeights> gate =
        RandomDeviceWeights(stream, dtype, m.n_ff, m.dim, 10, scale);
    if (!gate.ok()) return gate.status();
    absl::StatusOr<DeviceWeights> up = RandomDeviceWeights(stream, dtype, m.n_ff, m.dim, 11, scale);
    if (!up.ok()) return up.status();
    absl::StatusOr<DeviceWeights> down =
        RandomDeviceWeights(stream, dtype, m.n_ff, m.dim, 12, 0.02f);
    if (!down.ok()) return down.status();
    const double layer_bytes = 3.0 * static_cast<double>(gate->bytes());
    const std::string name(DTypeName(dtype));
    const std::string shape = absl::StrFormat("%d neurons x %d", m.n_ff, m.dim);

    absl::StatusOr<double> dense = runner.Run(
        {"ffn dense", name, shape, 0, layer_bytes, 0, "gate, up, silu, down: 4 kernels"}, [&] {
          if (absl::Status s = MatVec(stream, gate->matrix, x->As<float>(), g); !s.ok()) return s;
          if (absl::Status s = MatVec(stream, up->matrix, x->As<float>(), u); !s.ok()) return s;
          if (absl::Status s = FfnCombine(stream, ActivationKind::kSilu, 0.0f, g, u, m.n_ff, a);
              !s.ok()) {
            return s;
          }
          return MatVecTransposedAccumulate(stream, down->matrix, a, y->As<float>());
        });
    if (!dense.ok()) return dense.status();

    HotFfnWeights hot;
    hot.gate = gate->matrix;
    hot.up = up->matrix;
    hot.down = down->matrix;
    hot.neuron_ids = d_ids->As<int32_t>();
    absl::StatusOr<double> all = runner.Run(
        {"ffn sparse, all active", name, shape, 0, layer_bytes, 0, "HotSparseFfn without a mask"},
        [&] {
          return HotSparseFfn(stream, hot, ActivationKind::kSilu, 0.0f, x->As<float>(), nullptr,
                              y->As<float>());
        });
    if (!all.ok()) return all.status();
    const double active_bytes = layer_bytes * static_cast<double>(n_active) / m.n_ff;
    absl::StatusOr<double> sparse =
        runner.Run({absl::StrFormat("ffn sparse, %.0f%% active", 100 * density), name, shape, 0,
                    active_bytes, 0, ""},
                   [&] {
                     return HotSparseFfn(stream, hot, ActivationKind::kSilu, 0.0f, x->As<float>(),
                                         d_mask->As<uint8_t>(), y->As<float>());
                   });
    if (!sparse.ok()) return sparse.status();
    runner.results().back().note =
        absl::StrFormat("%.2fx faster than dense (%.2fx the ideal %.1fx)", *dense / *sparse,
                        (*dense / *sparse) / (1.0 / density), 1.0 / density);
  }
  return absl::OkStatus();
}

absl::Status BenchPredictor(Runner& runner, const ModelShape& m) {
  Stream& stream = runner.stream();
  for (int64_t rank : {int64_t{256}, int64_t{1024}}) {
    absl::StatusOr<DeviceWeights> w1 = RandomDeviceWeights(
        stream, DType::kF16, rank, m.dim, 20, 1.0f / std::sqrt(static_cast<float>(m.dim)));
    if (!w1.ok()) return w1.status();
    absl::StatusOr<DeviceWeights> w2 = RandomDeviceWeights(
        stream, DType::kF16, m.n_ff, rank, 21, 2.0f / std::sqrt(static_cast<float>(rank)));
    if (!w2.ok()) return w2.status();
    absl::StatusOr<DeviceBuffer> x = RandomDeviceVector(stream, m.dim, 22);
    if (!x.ok()) return x.status();
    absl::StatusOr<DeviceBuffer> out = DeviceBuffer::Allocate(m.n_ff * 5 + 64);
    if (!out.ok()) return out.status();
    DevicePredictor weights;
    weights.w1 = w1->matrix;
    weights.w2 = w2->matrix;
    int32_t* ids = out->As<int32_t>();
    int32_t* count = ids + m.n_ff;
    uint8_t* mask = reinterpret_cast<uint8_t*>(count + 16);
    absl::StatusOr<double> t = runner.Run(
        {"predictor", "f16", absl::StrFormat("%d -> %d -> %d", m.dim, rank, m.n_ff), 0,
         static_cast<double>(w1->bytes() + w2->bytes()), 0, "2 mat-vecs + threshold + compaction"},
        [&] {
          return PredictActiveNeurons(stream, weights, x->As<float>(), 0.5f, ids, count, mask);
        });
    if (!t.ok()) return t.status();
  }
  return absl::OkStatus();
}

absl::Status BenchAttention(Runner& runner, const ModelShape& m) {
  Stream& stream = runner.stream();
  const int64_t head_dim = m.dim / m.n_heads;
  for (DType kv : {DType::kF16, DType::kF32}) {
    for (int64_t context : {int64_t{512}, int64_t{4096}}) {
      AttentionShape shape{m.n_heads, m.n_heads, head_dim, m.dim, kv};
      const size_t element = kv == DType::kF16 ? 2 : 4;
      const size_t cache_bytes = static_cast<size_t>(context * m.dim) * element;
      absl::StatusOr<DeviceBuffer> k = DeviceBuffer::Allocate(cache_bytes);
      if (!k.ok()) return k.status();
      absl::StatusOr<DeviceBuffer> v = DeviceBuffer::Allocate(cache_bytes);
      if (!v.ok()) return v.status();
      if (absl::Status s = ZeroDevice(stream, k->data(), cache_bytes); !s.ok()) return s;
      if (absl::Status s = ZeroDevice(stream, v->data(), cache_bytes); !s.ok()) return s;
      absl::StatusOr<DeviceBuffer> q = RandomDeviceVector(stream, m.dim, 30);
      if (!q.ok()) return q.status();
      absl::StatusOr<DeviceBuffer> out = DeviceBuffer::Allocate(m.dim * sizeof(float));
      if (!out.ok()) return out.status();
      absl::StatusOr<double> t =
          runner.Run({"attention decode", std::string(DTypeName(kv)),
                      absl::StrFormat("%d heads x %d, ctx %d", m.n_heads, head_dim, context), 0,
                      2.0 * cache_bytes, 0, "KV cache read"},
                     [&] {
                       return Attention(stream, shape, q->As<float>(), k->data(), v->data(),
                                        context - 1, 1, out->As<float>());
                     });
      if (!t.ok()) return t.status();
    }
  }
  return absl::OkStatus();
}

absl::Status BenchPrefill(Runner& runner, const ModelShape& m) {
  Stream& stream = runner.stream();
  constexpr int64_t kTokens = 512;
  absl::StatusOr<DeviceBuffer> x = RandomDeviceVector(stream, kTokens * m.dim, 40);
  if (!x.ok()) return x.status();
  absl::StatusOr<DeviceBuffer> y = DeviceBuffer::Allocate(kTokens * m.n_ff * sizeof(float));
  if (!y.ok()) return y.status();
  for (DType dtype : {DType::kF16, DType::kQ4_0, DType::kQ8_0}) {
    absl::StatusOr<DeviceWeights> w = RandomDeviceWeights(stream, dtype, m.n_ff, m.dim, 41, 0.02f);
    if (!w.ok()) return w.status();
    absl::StatusOr<double> t = runner.Run(
        {"matmul prefill", std::string(DTypeName(dtype)),
         absl::StrFormat("%s, %d tokens", Shape2(m.n_ff, m.dim), kTokens), 0,
         static_cast<double>(w->bytes()), 2.0 * kTokens * m.n_ff * m.dim, "cuBLAS"},
        [&] { return MatMul(stream, w->matrix, x->As<float>(), kTokens, y->As<float>()); });
    if (!t.ok()) return t.status();
  }
  return absl::OkStatus();
}

void PrintTable(const DeviceInfo& info, const std::vector<Result>& results, double copy_gbps) {
  std::printf("device: %s\n", DescribeDevice(info).c_str());
  std::printf("%-26s %-5s %-28s %10s %9s %8s  %s\n", "op", "dtype", "shape", "time us", "GB/s",
              "of copy", "note");
  for (const Result& r : results) {
    const double gbps = r.bytes / (r.micros * 1e3);
    std::string extra = r.note;
    if (r.flops > 0)
      extra = absl::StrFormat("%.1f TFLOP/s; %s", r.flops / (r.micros * 1e6), r.note);
    std::printf("%-26s %-5s %-28s %10.1f %9.0f %7.0f%%  %s\n", r.op.c_str(), r.dtype.c_str(),
                r.shape.c_str(), r.micros, gbps, copy_gbps > 0 ? 100.0 * gbps / copy_gbps : 0.0,
                extra.c_str());
  }
}

nlohmann::json ToJson(const DeviceInfo& info, const std::vector<Result>& results) {
  nlohmann::json rows = nlohmann::json::array();
  for (const Result& r : results) {
    rows.push_back({{"op", r.op},
                    {"dtype", r.dtype},
                    {"shape", r.shape},
                    {"micros", r.micros},
                    {"bytes", r.bytes},
                    {"gbps", r.bytes / (r.micros * 1e3)},
                    {"tflops", r.flops > 0 ? r.flops / (r.micros * 1e6) : 0.0},
                    {"note", r.note}});
  }
  return {{"device", DescribeDevice(info)},
          {"peak_memory_bandwidth_gbps", info.peak_memory_bandwidth_gbps},
          {"results", rows}};
}

int Main(int argc, char** argv) {
  CLI::App app{
      "Throughput of pinfer's CUDA kernels at Llama shapes (needs a CUDA device).\n\n"
      "Example:\n"
      "  pinfer-cuda-bench --model 7b\n"
      "  pinfer-cuda-bench --model 13b --only ffn --json > ffn13b.json",
      kProgram};
  std::string model = "7b", only;
  int iterations = 100;
  double density = 0.1;
  bool json = false;
  app.add_option("--model", model, "shape: 7b or 13b")->capture_default_str();
  app.add_option("--iterations", iterations, "timed calls per measurement")->capture_default_str();
  app.add_option("--density", density, "predicted-active share for the sparse FFN")
      ->capture_default_str();
  app.add_option("--only", only,
                 "run only ops whose group name contains this (matvec, ffn, "
                 "predictor, attention, prefill)");
  app.add_flag("--json", json, "print the results as JSON");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  const ModelShape* shape = nullptr;
  for (const ModelShape& s : kShapes) {
    if (model == s.name) shape = &s;
  }
  if (shape == nullptr) {
    return ReportError(kProgram, absl::InvalidArgumentError("--model must be 7b or 13b"));
  }
  if (iterations < 1 || !(density > 0.0 && density <= 1.0)) {
    return ReportError(
        kProgram, absl::InvalidArgumentError("--iterations must be >= 1 and --density in (0, 1]"));
  }
  if (absl::Status s = CheckDeviceAvailable(); !s.ok()) return ReportError(kProgram, s);
  absl::StatusOr<int> device = CurrentDevice();
  if (!device.ok()) return ReportError(kProgram, device.status());
  absl::StatusOr<DeviceInfo> info = GetDeviceInfo(*device);
  if (!info.ok()) return ReportError(kProgram, info.status());
  absl::StatusOr<Stream> stream = Stream::Create();
  if (!stream.ok()) return ReportError(kProgram, stream.status());

  Runner runner(*stream, iterations, only);
  if (absl::Status s = BenchCopy(runner); !s.ok()) return ReportError(kProgram, s);
  const double copy_gbps = runner.results()[0].bytes / (runner.results()[0].micros * 1e3);
  const struct {
    const char* group;
    std::function<absl::Status()> run;
  } groups[] = {
      {"matvec", [&] { return BenchMatVec(runner, *shape); }},
      {"ffn", [&] { return BenchSparseFfn(runner, *shape, density); }},
      {"predictor", [&] { return BenchPredictor(runner, *shape); }},
      {"attention", [&] { return BenchAttention(runner, *shape); }},
      {"prefill", [&] { return BenchPrefill(runner, *shape); }},
  };
  for (const auto& g : groups) {
    if (!runner.Wanted(g.group)) continue;
    std::fprintf(stderr, "%s: %s...\n", kProgram, g.group);
    if (absl::Status s = g.run(); !s.ok()) return ReportError(kProgram, s);
  }
  if (absl::Status s = stream->Synchronize(); !s.ok()) return ReportError(kProgram, s);
  if (json) {
    std::printf("%s\n", ToJson(*info, runner.results()).dump(2).c_str());
  } else {
    PrintTable(*info, runner.results(), copy_gbps);
  }
  return 0;
}

}  // namespace
}  // namespace pinfer::cuda::bench

int main(int argc, char** argv) { return pinfer::cuda::bench::Main(argc, argv); }
