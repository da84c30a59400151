// gather_bench: the neuron-sparse FFN kernels (GatherMatMul, GatherMatMulTransposedAccumulate)
// against the dense mat-vec and the machine's read peak, interleaved in one run.
//
// Every repetition measures, for each thread count, in this order: the read peak (the STREAM-like
// sum of bench/kernels/read_peak.h over the weight pool itself), the dense MatVec over the whole
// matrix, then for each dtype and density GatherMatMul and (not for q4_0x16, which ffn_down_t is
// never stored as) GatherMatMulTransposedAccumulate over sorted random lists of that many rows
// (16 lists, drawn before the timing, taken in turn). Weights are replicated into a pool larger
// than the last-level cache and consecutive calls walk through the copies, so every figure is a
// DRAM figure (with 4 KiB pages, as a model's mmapped weights, unless --huge-pages). Bytes
// counted: those of the rows touched.
//
// Reported per line: the median over the repetitions of GB/s, and of the ratios to the dense
// MatVec and to the read peak measured in the same repetition (on a shared machine the ratios are
// more stable than the absolute rates).
//
// Usage: gather_bench [--threads 1,2] [--dtypes q4_0,q4_0x16] [--densities 0.05,0.1,0.2,0.4]
//                     [--tokens 1] [-r 7] [--pool-mb 256] [--rows 11008] [--cols 4096]
//                     [--clock wall|cpu] [--huge-pages]
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "bench/kernels/read_peak.h"
#include "format/dtype.h"
#include "format/quant.h"
#include "runtime/cpu/kernels.h"

namespace pinfer {
namespace {

// Seconds on the wall clock, or (--clock cpu) the process's CPU time divided by the thread
// count: on a machine shared with other work, time spent descheduled does not count (a fair
// measure for one thread; with more, a thread spinning at a barrier still counts).
bool g_cpu_clock = false;
int g_threads = 1;

double Now() {
  if (g_cpu_clock) {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec)) / g_threads;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Copies of one random [rows, cols] matrix of `dtype`, `min_bytes` in all at least.
class WeightPool {
 public:
  WeightPool(DType dtype, int64_t rows, int64_t cols, int64_t min_bytes, bool huge_pages) {
    const size_t row_bytes = *RowBytes(dtype, static_cast<uint64_t>(cols));
    matrix_bytes_ = row_bytes * static_cast<size_t>(rows);
    copies_ = std::max<int64_t>(2, min_bytes / static_cast<int64_t>(matrix_bytes_) + 1);
    // Whole 512-byte units, so that the pool can be read as SumWords' 64-word units.
    total_bytes_ = (matrix_bytes_ * static_cast<size_t>(copies_) + 511) / 512 * 512;
    // 2 MiB-aligned, so that --huge-pages can back it with transparent huge pages.
    constexpr size_t kHuge = size_t{2} << 20;
    void* memory = std::aligned_alloc(kHuge, (total_bytes_ + kHuge - 1) / kHuge * kHuge);
    if (memory == nullptr) throw std::bad_alloc();
    if (huge_pages) madvise(memory, total_bytes_, MADV_HUGEPAGE);
    std::memset(memory, 0, total_bytes_);
    data_.reset(static_cast<uint64_t*>(memory));
    uint8_t* base = reinterpret_cast<uint8_t*>(data_.get());
    std::mt19937 rng(static_cast<uint32_t>(rows * 31 + cols));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t r = 0; r < rows; ++r) {
      for (float& v : row) v = normal(rng);
      (void)EncodeRow(row.data(), static_cast<uint64_t>(cols), dtype, base + r * row_bytes);
    }
    for (int64_t c = 0; c < copies_; ++c) {
      if (c > 0) std::memcpy(base + c * matrix_bytes_, base, matrix_bytes_);
      views_.push_back(cpu::MakeMatrixView(dtype, rows, cols, base + c * matrix_bytes_));
    }
  }
  const cpu::MatrixView& view(int64_t i) const { return views_[static_cast<size_t>(i % copies_)]; }
  size_t matrix_bytes() const { return matrix_bytes_; }
  int64_t copies() const { return copies_; }
  const uint64_t* words() const { return data_.get(); }
  int64_t word_count() const { return static_cast<int64_t>(total_bytes_ / 8); }

 private:
  size_t matrix_bytes_ = 0;
  size_t total_bytes_ = 0;
  int64_t copies_ = 0;
  struct Free {
    void operator()(uint64_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint64_t, Free> data_;
  std::vector<cpu::MatrixView> views_;
};

// GB/s of the read of the whole pool, split over `threads` contiguous parts.
double ReadPeak(const WeightPool& pool, int threads, uint64_t* sink) {
  const int64_t words = pool.word_count() / (64 * threads) * (64 * threads);
  uint64_t total = 0;
  const double start = Now();
#pragma omp parallel num_threads(threads) reduction(+ : total)
  {
    const int64_t part = words / omp_get_num_threads();
    total += bench::SumWords(pool.words() + omp_get_thread_num() * part, part);
  }
  const double seconds = Now() - start;
  *sink += total;
  return static_cast<double>(words * 8) / seconds / 1e9;
}

// Sorted random row lists of one density, drawn once.
std::vector<std::vector<int32_t>> RowLists(int64_t rows, double density, int lists, uint32_t seed) {
  std::mt19937 rng(seed);
  const int64_t count = std::max<int64_t>(1, static_cast<int64_t>(density * rows + 0.5));
  std::vector<int32_t> all(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) all[static_cast<size_t>(r)] = static_cast<int32_t>(r);
  std::vector<std::vector<int32_t>> out;
  for (int l = 0; l < lists; ++l) {
    std::shuffle(all.begin(), all.end(), rng);
    std::vector<int32_t> list(all.begin(), all.begin() + count);
    std::sort(list.begin(), list.end());
    out.push_back(std::move(list));
  }
  return out;
}

// GB/s of `call(i)` for i = 0, 1, ... until `min_bytes` were read (at least `min_calls` calls).
template <class Call>
double Rate(double bytes_per_call, double min_bytes, int64_t min_calls, Call call) {
  const int64_t calls =
      std::max<int64_t>(min_calls, static_cast<int64_t>(min_bytes / bytes_per_call) + 1);
  call(calls);  // warm-up: page tables, scratch buffers, thread pool
  const double start = Now();
  for (int64_t i = 0; i < calls; ++i) call(i);
  const double seconds = Now() - start;
  return bytes_per_call * static_cast<double>(calls) / seconds / 1e9;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

struct Series {
  std::vector<double> gbps, of_dense, of_peak;
};

struct Options {
  std::vector<int> threads{1, 2};
  std::vector<std::string> dtypes{"q4_0", "q4_0x16"};
  std::vector<double> densities{0.05, 0.10, 0.20, 0.40};
  std::vector<int64_t> tokens{1};
  int repetitions = 7;
  int64_t pool_mb = 256;
  int64_t rows = 11008;
  int64_t cols = 4096;
  std::string clock = "wall";
  bool huge_pages = false;
};

int Main(const Options& o) {
  constexpr int kLists = 16;
  g_cpu_clock = o.clock == "cpu";
  const double min_bytes = static_cast<double>(o.pool_mb << 20);
  std::vector<DType> dtypes;
  for (const std::string& name : o.dtypes) {
    const absl::StatusOr<DType> dtype = ParseDType(name);
    if (!dtype.ok() || (*dtype != DType::kQ4_0 && *dtype != DType::kQ4_0x16 && *dtype != DType::kQ8_0 &&
                   *dtype != DType::kF16 && *dtype != DType::kF32)) {
      std::fprintf(stderr, "gather_bench: --dtypes: unknown or unsupported dtype '%s'\n",
                   name.c_str());
      return 1;
    }
    dtypes.push_back(*dtype);
  }
  std::map<DType, std::unique_ptr<WeightPool>> pools;
  for (DType dtype : dtypes) {
    pools[dtype] =
        std::make_unique<WeightPool>(dtype, o.rows, o.cols, o.pool_mb << 20, o.huge_pages);
  }
  std::vector<std::vector<std::vector<int32_t>>> lists;
  for (size_t d = 0; d < o.densities.size(); ++d) {
    lists.push_back(RowLists(o.rows, o.densities[d], kLists, static_cast<uint32_t>(11 + d)));
  }
  const int64_t max_n = *std::max_element(o.tokens.begin(), o.tokens.end());
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  std::vector<float> x(static_cast<size_t>(max_n * std::max(o.rows, o.cols)));
  for (float& v : x) v = normal(rng);
  std::vector<float> y(static_cast<size_t>(max_n * std::max(o.rows, o.cols)));

  // key: threads, dtype, kernel ("peak", "dense", "gather", "gather_t"), density, n
  using Key = std::tuple<int, std::string, std::string, double, int64_t>;
  std::map<Key, Series> results;
  uint64_t sink = 0;
  for (int rep = 0; rep < o.repetitions; ++rep) {
    for (int threads : o.threads) {
      cpu::SetThreads(threads);
      g_threads = threads;
      for (DType dtype : dtypes) {
        const WeightPool& pool = *pools[dtype];
        const std::string name(DTypeName(dtype));
        const double peak = ReadPeak(pool, threads, &sink);
        results[{threads, name, "peak", 0.0, 1}].gbps.push_back(peak);
        const double dense = Rate(static_cast<double>(pool.matrix_bytes()), min_bytes,
                                  pool.copies(), [&](int64_t i) {
                                    cpu::MatVec(pool.view(i), x.data(), y.data());
                                  });
        Series& ds = results[{threads, name, "dense", 1.0, 1}];
        ds.gbps.push_back(dense);
        ds.of_dense.push_back(1.0);
        ds.of_peak.push_back(dense / peak);
        for (int64_t n : o.tokens) {
          for (size_t d = 0; d < o.densities.size(); ++d) {
            const auto& ls = lists[d];
            const int64_t count = static_cast<int64_t>(ls[0].size());
            const double bytes = static_cast<double>(count) * pool.view(0).row_bytes;
            const int64_t min_calls = pool.copies() * kLists;
            const double gather = Rate(bytes, min_bytes, min_calls, [&](int64_t i) {
              cpu::GatherMatMul(pool.view(i), ls[static_cast<size_t>(i % kLists)].data(), count,
                                x.data(), n, y.data());
            });
            // ffn_down_t, the transposed operand, is never stored as q4_0x16 (pi-convert keeps
            // that layout for matrices read by dot products).
            if (dtype == DType::kQ4_0x16) {
              Series& s = results[{threads, name, "gather", o.densities[d], n}];
              s.gbps.push_back(gather);
              s.of_dense.push_back(gather / dense);
              s.of_peak.push_back(gather / peak);
              continue;
            }
            const double gather_t = Rate(bytes, min_bytes, min_calls, [&](int64_t i) {
              cpu::GatherMatMulTransposedAccumulate(pool.view(i),
                                                    ls[static_cast<size_t>(i % kLists)].data(),
                                                    count, x.data(), n, y.data());
            });
            for (const auto& [kernel, rate] :
                 {std::pair<const char*, double>{"gather", gather}, {"gather_t", gather_t}}) {
              Series& s = results[{threads, name, kernel, o.densities[d], n}];
              s.gbps.push_back(rate);
              s.of_dense.push_back(rate / dense);
              s.of_peak.push_back(rate / peak);
            }
          }
        }
      }
    }
    std::fprintf(stderr, "repetition %d of %d done\n", rep + 1, o.repetitions);
  }
  std::printf(
      "gather_bench: %lld x %lld, kernels %s, %d repetitions (medians), pool %lld MiB%s, %s "
      "clock\n",
      static_cast<long long>(o.rows), static_cast<long long>(o.cols), cpu::SimdTargetName(),
      o.repetitions, static_cast<long long>(o.pool_mb), o.huge_pages ? " (huge pages)" : "",
      o.clock.c_str());
  std::printf("%-7s %-8s %-9s %7s %3s %9s %9s %9s\n", "threads", "dtype", "kernel", "density", "n",
              "GB/s", "of_dense", "of_peak");
  for (const auto& [key, s] : results) {
    const auto& [threads, dtype, kernel, density, n] = key;
    std::printf("%-7d %-8s %-9s %7.2f %3lld %9.2f", threads, dtype.c_str(), kernel.c_str(),
                density, static_cast<long long>(n), Median(s.gbps));
    if (s.of_dense.empty()) {
      std::printf("\n");
    } else {
      std::printf(" %9.3f %9.3f\n", Median(s.of_dense), Median(s.of_peak));
    }
  }
  if (sink == 42) std::printf(" ");
  return 0;
}

}  // namespace
}  // namespace pinfer

int main(int argc, char** argv) {
  CLI::App app{"Gathered-row kernels against the dense mat-vec and the read peak, one run."};
  pinfer::Options o;
  app.add_option("--threads", o.threads, "thread counts")->delimiter(',')->capture_default_str();
  app.add_option("--dtypes", o.dtypes, "weight dtypes")->delimiter(',')->capture_default_str();
  app.add_option("--densities", o.densities, "fractions of the rows gathered")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--tokens", o.tokens, "batch sizes n")->delimiter(',')->capture_default_str();
  app.add_option("-r,--repetitions", o.repetitions, "repetitions (medians reported)")
      ->capture_default_str();
  app.add_option("--pool-mb", o.pool_mb, "weight copies per dtype, and bytes per measurement")
      ->capture_default_str();
  app.add_option("--rows", o.rows, "matrix rows (n_ff)")->capture_default_str();
  app.add_option("--cols", o.cols, "matrix columns (dim)")->capture_default_str();
  app.add_option("--clock", o.clock, "wall, or cpu: process CPU time / threads (shared machines)")
      ->check(CLI::IsMember({"wall", "cpu"}))
      ->capture_default_str();
  app.add_flag("--huge-pages", o.huge_pages,
               "back the weights with transparent huge pages (madvise): how much of the gap is "
               "TLB misses (a model's mmapped weights have 4 KiB pages)");
  CLI11_PARSE(app, argc, argv);
  if (o.repetitions < 1 || o.pool_mb < 1 || o.rows < 1 || o.cols < 32 || o.cols % 32 != 0 ||
      o.threads.empty() || o.tokens.empty()) {
    std::fprintf(stderr,
                 "gather_bench: -r, --pool-mb, --rows must be positive, --cols a multiple of 32\n");
    return 1;
  }
  for (double d : o.densities) {
    if (!(d > 0.0 && d <= 1.0)) {
      std::fprintf(stderr, "gather_bench: --densities must be in (0, 1]\n");
      return 1;
    }
  }
  return pinfer::Main(o);
}
