// bench_kernels: Google Benchmark for the CPU kernels, with the machine's peak read bandwidth
// measured in the same run by a STREAM-like read kernel.
//
// Every product reports
//   GB/s       bytes of weights (plus activations and outputs) read or written per second,
//   fast_GB/s  the same for the fast decile of the calls (on a machine shared with other work,
//              the calls that ran undisturbed),
//   peak       fast_GB/s divided by the read peak measured here for the same thread count (the
//              fast decile of 16 MiB chunks of a STREAM-like read of a 1 GiB buffer),
//   GFLOP/s    2 · multiply-adds per second (and fast_GFLOP/s),
// and the matrix-matrix products also x_matvec: how many times faster per token than n mat-vecs
// of the same matrix measured earlier in this run.
//
// Decode is a stream over the weights, so the weights of a benchmark are replicated into a pool
// larger than the last-level cache (PINFER_BENCH_POOL_MB, default 1024) and consecutive iterations
// walk through the copies: the numbers are DRAM numbers, as in a model that does not fit in cache.
// The tiny model's shapes (stories260K) fit in L1/L2 whatever we do; they measure overhead.
//
// Usage: bench_kernels [--benchmark_filter=REGEX] [google benchmark flags]
// e.g.   bench_kernels --benchmark_filter='MatVec/q4_0'
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/kernels/read_peak.h"
#include "benchmark/benchmark.h"
#include "format/dtype.h"
#include "format/quant.h"
#include "format/strings.h"
#include "runtime/cpu/kernels.h"

namespace pinfer::cpu {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kThreadCounts[] = {1, 2};

int64_t PoolBytes() {
  const char* env = std::getenv("PINFER_BENCH_POOL_MB");
  return (env != nullptr ? std::atoll(env) : 1024) << 20;
}

// ------------------------------------------------------------------------------------------------
// STREAM-like read peak: the sum of a buffer several times the last-level cache, split over the
// threads, the fast decile of its chunks.

std::map<int, double>& PeakReadGBps() {
  static std::map<int, double> peaks;
  return peaks;
}

class ReadBuffer {
 public:
  static ReadBuffer& Get() {
    static ReadBuffer buffer(std::max<int64_t>(PoolBytes(), int64_t{512} << 20));
    return buffer;
  }
  const uint64_t* data() const { return words_.get(); }
  int64_t words() const { return words_count_; }

 private:
  explicit ReadBuffer(int64_t bytes)
      : words_count_(bytes / 8), words_(new uint64_t[static_cast<size_t>(words_count_)]) {
    for (int64_t i = 0; i < words_count_; ++i) words_[i] = static_cast<uint64_t>(i);
  }
  int64_t words_count_;
  std::unique_ptr<uint64_t[]> words_;
};

constexpr int64_t kReadChunkBytes = int64_t{16} << 20;

// Per-call timing: the mean (what Google Benchmark reports) and the fast decile (the 10th
// percentile of the call times): on a machine shared with other work, the calls that ran
// undisturbed, without the rare outlier that found its data still in cache.
class CallTimer {
 public:
  void Start() {
    start_ = Clock::now();
    cpu_start_ = ThreadCpuSeconds();
  }
  void Stop() {
    Add(std::chrono::duration<double>(Clock::now() - start_).count());
    cpu_times_.push_back(ThreadCpuSeconds() - cpu_start_);
  }
  void Add(double seconds) {
    total_ += seconds;
    times_.push_back(seconds);
  }
  double total() const { return total_; }
  double FastDecile() const { return Decile(times_); }
  // The calling thread's CPU time per call (fast decile): preemption does not count, so for
  // single-threaded compute-bound calls longer than a scheduler slice this is the one stable
  // figure on a busy machine.
  double CpuFastDecile() const { return Decile(cpu_times_); }

 private:
  static double ThreadCpuSeconds() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  }
  static double Decile(std::vector<double> times) {
    std::sort(times.begin(), times.end());
    return times.empty() ? 0.0 : times[times.size() / 10];
  }

  Clock::time_point start_;
  double cpu_start_ = 0.0;
  double total_ = 0.0;
  std::vector<double> times_;
  std::vector<double> cpu_times_;
};

// Reads one chunk of the buffer (split over `threads` threads); returns the seconds it took.
double ReadChunk(int threads, int64_t chunk, uint64_t* sink) {
  const int64_t chunk_words = kReadChunkBytes / 8;
  const uint64_t* data = ReadBuffer::Get().data() + chunk * chunk_words;
  uint64_t total = 0;
  const auto start = Clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : total)
  {
    const int64_t parts = omp_get_num_threads();
    const int64_t id = omp_get_thread_num();
    const int64_t begin = chunk_words * id / parts / 64 * 64;
    const int64_t end = id + 1 == parts ? chunk_words : chunk_words * (id + 1) / parts / 64 * 64;
    total += pinfer::bench::SumWords(data + begin, end - begin);
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  *sink += total;
  return seconds;
}

// Passes over the whole buffer, chunk by chunk (each chunk was last touched a buffer ago, so it
// comes from DRAM), timing every chunk.
CallTimer ReadPasses(int threads, int passes) {
  CallTimer timer;
  uint64_t sink = 0;
  const int64_t chunks = ReadBuffer::Get().words() * 8 / kReadChunkBytes;
  for (int pass = 0; pass < passes; ++pass) {
    for (int64_t chunk = 0; chunk < chunks; ++chunk) timer.Add(ReadChunk(threads, chunk, &sink));
  }
  benchmark::DoNotOptimize(sink);
  return timer;
}

// The read peak: the fast decile of 16 MiB chunks over a few passes.
double MeasurePeakRead(int threads) {
  ReadPasses(threads, 1);  // warm-up (page faults already taken by the constructor)
  return static_cast<double>(kReadChunkBytes) / ReadPasses(threads, 4).FastDecile() / 1e9;
}

void BM_StreamRead(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  CallTimer chunks;
  for (auto _ : state) {
    const CallTimer pass = ReadPasses(threads, 1);
    state.SetIterationTime(pass.total());
    chunks.Add(pass.total());
  }
  const double bytes = static_cast<double>(ReadBuffer::Get().words()) * 8;
  state.counters["GB/s"] = bytes * static_cast<double>(state.iterations()) / chunks.total() / 1e9;
}

// ------------------------------------------------------------------------------------------------
// Weight pools.

// Copies of one random matrix, enough of them to exceed the last-level cache.
class MatrixPool {
 public:
  MatrixPool(DType dtype, int64_t rows, int64_t cols, int64_t min_bytes) {
    const size_t row_bytes = *RowBytes(dtype, cols);
    matrix_bytes_ = row_bytes * rows;
    copies_ = std::clamp<int64_t>(min_bytes / static_cast<int64_t>(matrix_bytes_) + 1, 1, 4096);
    data_.reset(new uint8_t[matrix_bytes_ * copies_]);
    std::mt19937 rng(static_cast<uint32_t>(rows * 31 + cols));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> row(cols);
    for (int64_t r = 0; r < rows; ++r) {
      for (float& v : row) v = normal(rng);
      (void)EncodeRow(row.data(), cols, dtype, data_.get() + r * row_bytes);
    }
    for (int64_t c = 1; c < copies_; ++c) {
      std::memcpy(data_.get() + c * matrix_bytes_, data_.get(), matrix_bytes_);
    }
    for (int64_t c = 0; c < copies_; ++c) {
      views_.push_back(MakeMatrixView(dtype, rows, cols, data_.get() + c * matrix_bytes_));
    }
  }
  const MatrixView& view(int64_t i) const { return views_[i % copies_]; }
  size_t matrix_bytes() const { return matrix_bytes_; }

 private:
  size_t matrix_bytes_ = 0;
  int64_t copies_ = 0;
  std::unique_ptr<uint8_t[]> data_;
  std::vector<MatrixView> views_;
};

// The pool of the benchmark running now; consecutive benchmarks on the same matrix share it.
const MatrixPool& PoolFor(DType dtype, int64_t rows, int64_t cols, bool stream) {
  static std::unique_ptr<MatrixPool> pool;
  static std::tuple<DType, int64_t, int64_t, bool> key;
  const auto wanted = std::make_tuple(dtype, rows, cols, stream);
  if (pool == nullptr || key != wanted) {
    pool.reset();
    pool = std::make_unique<MatrixPool>(dtype, rows, cols, stream ? PoolBytes() : 0);
    key = wanted;
  }
  return *pool;
}

// Normally distributed values (a zero with probability 1 - density). Large buffers (KV caches)
// repeat a random block: the values only need to look like activations, not be independent.
std::vector<float> RandomActivations(int64_t count, uint32_t seed, double density = 1.0) {
  constexpr int64_t kDistinct = int64_t{1} << 20;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::vector<float> x(count);
  const int64_t distinct = std::min(count, kDistinct);
  for (int64_t i = 0; i < distinct; ++i) x[i] = uniform(rng) < density ? normal(rng) : 0.0f;
  for (int64_t i = distinct; i < count; i += distinct) {
    std::copy_n(x.begin(), std::min(distinct, count - i), x.begin() + i);
  }
  return x;
}

// Seconds per mat-vec, by (dtype, rows, cols, threads), for the x_matvec ratio of the mat-muls.
std::map<std::tuple<DType, int64_t, int64_t, int>, double>& MatVecSeconds() {
  static std::map<std::tuple<DType, int64_t, int64_t, int>, double> seconds;
  return seconds;
}

// GB/s and GFLOP/s of the mean call, fast_GB/s of the fast decile, and peak = fast_GB/s over the
// read peak (both fast-decile figures, so the ratio compares like with like). Single-threaded runs
// also report cpu_GFLOP/s, from the thread's CPU time (see CallTimer).
void ReportProduct(benchmark::State& state, int threads, const CallTimer& timer,
                   double bytes_per_call, double flops_per_call) {
  const double calls = static_cast<double>(state.iterations());
  const double fast = timer.FastDecile();
  state.counters["GB/s"] = bytes_per_call * calls / timer.total() / 1e9;
  state.counters["fast_GB/s"] = bytes_per_call / fast / 1e9;
  state.counters["peak"] = state.counters["fast_GB/s"] / PeakReadGBps()[threads];
  state.counters["GFLOP/s"] = flops_per_call * calls / timer.total() / 1e9;
  state.counters["fast_GFLOP/s"] = flops_per_call / fast / 1e9;
  if (threads == 1) state.counters["cpu_GFLOP/s"] = flops_per_call / timer.CpuFastDecile() / 1e9;
}

// ------------------------------------------------------------------------------------------------
// Products.

void BM_MatVec(benchmark::State& state, DType dtype, int64_t rows, int64_t cols, bool stream) {
  const int threads = static_cast<int>(state.range(0));
  SetThreads(threads);
  const MatrixPool& pool = PoolFor(dtype, rows, cols, stream);
  const std::vector<float> x = RandomActivations(cols, 1);
  std::vector<float> y(rows);
  int64_t i = 0;
  CallTimer timer;
  for (auto _ : state) {
    timer.Start();
    MatVec(pool.view(i++), x.data(), y.data());
    benchmark::ClobberMemory();
    timer.Stop();
  }
  ReportProduct(state, threads, timer, pool.matrix_bytes() + 4.0 * (rows + cols),
                2.0 * rows * cols);
  MatVecSeconds()[{dtype, rows, cols, threads}] = timer.FastDecile();
}

void BM_MatMul(benchmark::State& state, DType dtype, int64_t rows, int64_t cols, int64_t n) {
  const int threads = static_cast<int>(state.range(0));
  SetThreads(threads);
  const MatrixPool& pool = PoolFor(dtype, rows, cols, true);
  const std::vector<float> x = RandomActivations(n * cols, 2);
  std::vector<float> y(n * rows);
  int64_t i = 0;
  CallTimer timer;
  for (auto _ : state) {
    timer.Start();
    MatMul(pool.view(i++), x.data(), n, y.data());
    benchmark::ClobberMemory();
    timer.Stop();
  }
  ReportProduct(state, threads, timer, pool.matrix_bytes() + 4.0 * n * (rows + cols),
                2.0 * rows * cols * n);
  // Against n mat-vecs (fast deciles of both).
  const auto matvec = MatVecSeconds().find({dtype, rows, cols, threads});
  if (matvec != MatVecSeconds().end()) {
    state.counters["x_matvec"] = matvec->second * n / timer.FastDecile();
  }
}

// The FFN down projection over the neuron-major [n_ff, dim] matrix, with a fraction `density` of
// the activations non-zero (1 for SiLU models; ReLU models leave most of them zero). GB/s and
// GFLOP/s count the rows actually read.
void BM_TransposedAccumulate(benchmark::State& state, DType dtype, int64_t rows, int64_t cols,
                             int64_t n, double density) {
  const int threads = static_cast<int>(state.range(0));
  SetThreads(threads);
  const MatrixPool& pool = PoolFor(dtype, rows, cols, true);
  const std::vector<float> a = RandomActivations(n * rows, 3, density);
  std::vector<float> y(n * cols, 0.0f);
  int64_t active_rows = 0;
  for (int64_t r = 0; r < rows; ++r) {
    bool any = false;
    for (int64_t t = 0; t < n; ++t) any |= a[t * rows + r] != 0.0f;
    active_rows += any;
  }
  int64_t i = 0;
  CallTimer timer;
  for (auto _ : state) {
    timer.Start();
    if (n == 1) {
      MatVecTransposedAccumulate(pool.view(i++), a.data(), y.data());
    } else {
      MatMulTransposedAccumulate(pool.view(i++), a.data(), n, y.data());
    }
    benchmark::ClobberMemory();
    timer.Stop();
  }
  const double row_bytes = static_cast<double>(pool.matrix_bytes()) / rows;
  ReportProduct(state, threads, timer, active_rows * row_bytes + 4.0 * n * (rows + 2 * cols),
                2.0 * active_rows * cols * n);
}

// Decode attention at a context length over a KV cache of `kv_type` (f32, f16 or q8_0): the K and V
// rows of every head are read once.
void BM_AttentionDecode(benchmark::State& state, DType kv_type, int64_t n_heads, int64_t n_kv_heads,
                        int64_t head_dim, int64_t context) {
  const int threads = static_cast<int>(state.range(0));
  SetThreads(threads);
  AttentionShape shape{n_heads, n_kv_heads, head_dim, n_kv_heads * head_dim};
  const int64_t row_bytes = static_cast<int64_t>(*RowBytes(kv_type, shape.kv_stride));
  const int64_t cache_bytes = context * row_bytes;
  // Several layers' caches, so that the reads come from DRAM.
  const int64_t layers = std::clamp<int64_t>(PoolBytes() / (2 * cache_bytes) + 1, 1, 256);
  // The caches of the benchmark running now, kept across its runs (Google Benchmark calls the
  // function several times while it sizes the iteration count).
  struct Caches {
    bool filled = false;
    std::tuple<DType, int64_t, int64_t> key;
    std::vector<uint8_t> k, v;
  };
  static Caches caches;
  if (!caches.filled || caches.key != std::make_tuple(kv_type, cache_bytes, layers)) {
    caches.filled = true;
    caches.key = std::make_tuple(kv_type, cache_bytes, layers);
    const int64_t rows = layers * context;
    caches.k.resize(rows * row_bytes);
    caches.v.resize(rows * row_bytes);
    EncodeRows(kv_type, RandomActivations(rows * shape.kv_stride, 4).data(), rows, shape.kv_stride,
               caches.k.data());
    EncodeRows(kv_type, RandomActivations(rows * shape.kv_stride, 5).data(), rows, shape.kv_stride,
               caches.v.data());
  }
  const std::vector<float> q = RandomActivations(n_heads * head_dim, 6);
  std::vector<float> out(n_heads * head_dim);
  int64_t i = 0;
  CallTimer timer;
  for (auto _ : state) {
    timer.Start();
    const int64_t offset = (i++ % layers) * cache_bytes;
    Attention(shape, kv_type, q.data(), caches.k.data() + offset, caches.v.data() + offset,
              context - 1, 1, out.data());
    benchmark::ClobberMemory();
    timer.Stop();
  }
  ReportProduct(state, threads, timer, 2.0 * cache_bytes, 4.0 * n_heads * head_dim * context);
}

void BM_AttentionPrefill(benchmark::State& state, int64_t n_heads, int64_t n_kv_heads,
                         int64_t head_dim, int64_t n) {
  const int threads = static_cast<int>(state.range(0));
  SetThreads(threads);
  AttentionShape shape{n_heads, n_kv_heads, head_dim, n_kv_heads * head_dim};
  const std::vector<float> k = RandomActivations(n * shape.kv_stride, 4);
  const std::vector<float> v = RandomActivations(n * shape.kv_stride, 5);
  const std::vector<float> q = RandomActivations(n * n_heads * head_dim, 6);
  std::vector<float> out(n * n_heads * head_dim);
  CallTimer timer;
  for (auto _ : state) {
    timer.Start();
    Attention(shape, DType::kF32, q.data(), k.data(), v.data(), 0, n, out.data());
    benchmark::ClobberMemory();
    timer.Stop();
  }
  // Causal: token t attends to t + 1 keys.
  ReportProduct(state, threads, timer, 4.0 * (2 * n * shape.kv_stride + 2 * n * n_heads * head_dim),
                4.0 * n_heads * head_dim * (n * (n + 1) / 2.0));
}

// ------------------------------------------------------------------------------------------------
// Small kernels (single-threaded by design): time per call.

void BM_RmsNorm(benchmark::State& state) {
  const int64_t n = state.range(0);
  std::vector<float> x = RandomActivations(n, 7), w = RandomActivations(n, 8), out(n);
  for (auto _ : state) {
    RmsNorm(x.data(), w.data(), n, 1e-5f, out.data());
    benchmark::ClobberMemory();
  }
}

void BM_Softmax(benchmark::State& state) {
  const int64_t n = state.range(0);
  const std::vector<float> x = RandomActivations(n, 9);
  std::vector<float> work(n);
  for (auto _ : state) {
    std::copy(x.begin(), x.end(), work.begin());
    Softmax(work.data(), n);
    benchmark::ClobberMemory();
  }
}

void BM_FfnCombineSilu(benchmark::State& state) {
  const int64_t n = state.range(0);
  const std::vector<float> g = RandomActivations(n, 10), u = RandomActivations(n, 11);
  std::vector<float> out(n);
  for (auto _ : state) {
    FfnCombine(ActivationKind::kSilu, 0.0f, g.data(), u.data(), n, out.data());
    benchmark::ClobberMemory();
  }
}

void BM_Rope(benchmark::State& state) {
  const int64_t n_heads = 32, head_dim = 128;
  std::vector<float> v = RandomActivations(n_heads * head_dim, 12);
  int64_t pos = 0;
  for (auto _ : state) {
    RopeInterleaved(v.data(), n_heads, head_dim, pos++ % 4096, 10000.0);
    benchmark::ClobberMemory();
  }
}

// ------------------------------------------------------------------------------------------------

void AddThreads(benchmark::internal::Benchmark* b) {
  for (int threads : kThreadCounts) b->Arg(threads);
  b->ArgName("threads")->UseRealTime()->Unit(benchmark::kMicrosecond);
}

void RegisterAll() {
  benchmark::RegisterBenchmark("StreamRead", BM_StreamRead)
      ->Arg(1)
      ->Arg(2)
      ->ArgName("threads")
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond)
      ->Iterations(3);

  const DType kDTypes[] = {DType::kF32,  DType::kF16,  DType::kBF16,
                           DType::kQ8_0, DType::kQ4_0, DType::kQ4_0x16};
  struct Shape {
    int64_t rows, cols;
    const char* what;
    bool stream;  // walk a pool of copies larger than the last-level cache
  };
  // Llama-7B: attention projections 4096x4096, FFN gate/up 11008x4096; stories260K: dim 64,
  // hidden 172, vocab 512; and a matrix that stays in L2, to show the kernels' compute speed
  // apart from the memory's.
  const Shape kMatVecShapes[] = {
      {4096, 4096, "7b_attn", true},      {11008, 4096, "7b_ffn_up", true},
      {1024, 1024, "l2_resident", false}, {64, 64, "tiny_attn", false},
      {172, 64, "tiny_ffn_up", false},    {512, 64, "tiny_output", false}};
  for (DType dtype : kDTypes) {
    const std::string name(DTypeName(dtype));
    for (const Shape& s : kMatVecShapes) {
      benchmark::RegisterBenchmark(
          absl::StrCat("MatVec/", name, "/", s.what, "/", s.rows, "x", s.cols).c_str(), BM_MatVec,
          dtype, s.rows, s.cols, s.stream)
          ->Apply(AddThreads);
    }
    for (int64_t n : {32, 128}) {
      benchmark::RegisterBenchmark(
          absl::StrCat("MatMul/", name, "/7b_attn/4096x4096/n:", n).c_str(), BM_MatMul, dtype, 4096,
          4096, n)
          ->Apply(AddThreads);
    }
    // Small batches (a decode step of a few sequences, a speculative draft): each weight block
    // should be read once for every token, so x_matvec should approach n.
    if (dtype == DType::kQ4_0 || dtype == DType::kQ4_0x16) {
      for (int64_t n : {2, 4, 8, 16}) {
        benchmark::RegisterBenchmark(
            absl::StrCat("MatMul/", name, "/7b_ffn_up/11008x4096/n:", n).c_str(), BM_MatMul, dtype,
            11008, 4096, n)
            ->Apply(AddThreads);
      }
    }
    for (double density : {1.0, 0.1}) {
      benchmark::RegisterBenchmark(absl::StrCat("MatVecTransposedAccumulate/", name,
                                                "/7b_ffn_down/11008x4096/density:", density)
                                       .c_str(),
                                   BM_TransposedAccumulate, dtype, 11008, 4096, 1, density)
          ->Apply(AddThreads);
    }
    benchmark::RegisterBenchmark(
        absl::StrCat("MatVecTransposedAccumulate/", name, "/tiny_ffn_down/172x64").c_str(),
        BM_TransposedAccumulate, dtype, 172, 64, 1, 1.0)
        ->Apply(AddThreads);
    benchmark::RegisterBenchmark(
        absl::StrCat("MatMulTransposedAccumulate/", name, "/7b_ffn_down/11008x4096/n:32").c_str(),
        BM_TransposedAccumulate, dtype, 11008, 4096, 32, 1.0)
        ->Apply(AddThreads);
  }
  // The names keep the cache's element type ("f32_cache"), so that they stay comparable with
  // earlier runs.
  for (DType kv_type : {DType::kF32, DType::kF16, DType::kQ8_0}) {
    const std::string cache = absl::StrCat(std::string(DTypeName(kv_type)), "_cache");
    for (int64_t context : {512, 2048}) {
      benchmark::RegisterBenchmark(
          absl::StrCat("AttentionDecode/", cache, "/7b/ctx:", context).c_str(), BM_AttentionDecode,
          kv_type, 32, 32, 128, context)
          ->Apply(AddThreads);
      benchmark::RegisterBenchmark(
          absl::StrCat("AttentionDecode/", cache, "/gqa8/ctx:", context).c_str(),
          BM_AttentionDecode, kv_type, 32, 8, 128, context)
          ->Apply(AddThreads);
    }
  }
  benchmark::RegisterBenchmark("AttentionPrefill/7b/n:128", BM_AttentionPrefill, 32, 32, 128, 128)
      ->Apply(AddThreads);
  benchmark::RegisterBenchmark("RmsNorm", BM_RmsNorm)->Arg(64)->Arg(4096);
  benchmark::RegisterBenchmark("Softmax", BM_Softmax)->Arg(512)->Arg(4096);
  benchmark::RegisterBenchmark("FfnCombineSilu", BM_FfnCombineSilu)->Arg(172)->Arg(11008);
  benchmark::RegisterBenchmark("RopeInterleaved/32x128", BM_Rope);
}

}  // namespace
}  // namespace pinfer::cpu

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  using pinfer::cpu::PeakReadGBps;
  for (int threads : pinfer::cpu::kThreadCounts) {
    PeakReadGBps()[threads] = pinfer::cpu::MeasurePeakRead(threads);
  }
  std::fprintf(stderr,
               "SIMD target: %s; read peak (STREAM-like, %lld MiB):", pinfer::cpu::SimdTargetName(),
               static_cast<long long>(pinfer::cpu::ReadBuffer::Get().words() * 8 >> 20));
  for (const auto& [threads, gbps] : PeakReadGBps()) {
    std::fprintf(stderr, " %d thread%s %.1f GB/s;", threads, threads == 1 ? "" : "s", gbps);
  }
  std::fprintf(stderr, "\n");
  benchmark::AddCustomContext("simd_target", pinfer::cpu::SimdTargetName());
  pinfer::cpu::RegisterAll();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
