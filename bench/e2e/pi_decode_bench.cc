// pi-decode-bench: llama-bench's two measurements for a .pi model, so that the numbers compare:
//   pp N: evaluate N prompt tokens in batches (from an empty cache), tokens/s;
//   tg N: generate N tokens one at a time (from an empty cache; logits of every token), tokens/s,
//         and the effective bandwidth: bytes of weights and KV read per token / time.
//   --sequences S (tg N x S): S sequences decode together, as a server's slots do, one batched
//         forward pass per step (Session::EvaluateTogether), after a one-token prompt each:
//         aggregate tokens/s of the N steps, as llama-batched-bench's S_TG with -npp 1.
// Each test runs once to warm up, then `-r` times; mean and standard deviation are reported.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "runtime/common/cli_common.h"
#include "runtime/common/cli_flags.h"
#include "runtime/cpu/kernels.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/kv_cache.h"
#include "runtime/exec/session.h"
#include "runtime/model/model.h"

namespace pinfer {
namespace {

constexpr char kProgram[] = "pi-decode-bench";

struct Measurement {
  std::vector<double> tokens_per_second;
  std::vector<double> gbps;
  double bytes_per_token = 0;

  static double Mean(const std::vector<double>& v) {
    double sum = 0;
    for (double x : v) sum += x;
    return v.empty() ? 0 : sum / v.size();
  }
  static double StdDev(const std::vector<double>& v) {
    if (v.size() < 2) return 0;
    const double mean = Mean(v);
    double sum = 0;
    for (double x : v) sum += (x - mean) * (x - mean);
    return std::sqrt(sum / (v.size() - 1));
  }
};

// One run of a test: `prompt` tokens at once, or `generate` tokens one by one.
absl::StatusOr<ForwardStats> RunOnce(Session& session, const std::vector<int32_t>& tokens,
                                     bool one_by_one) {
  session.Reset();
  session.ResetStats();
  if (one_by_one) {
    for (const int32_t& token : tokens) {
      absl::StatusOr<std::span<const float>> logits =
          session.Evaluate(std::span<const int32_t>(&token, 1), Logits::kLast);
      if (!logits.ok()) return logits.status();
    }
  } else {
    absl::StatusOr<std::span<const float>> logits = session.Evaluate(tokens, Logits::kLast);
    if (!logits.ok()) return logits.status();
  }
  return session.stats();
}

// One run of S sequences decoding together: a one-token prompt each (one pass, not timed), then
// `steps` passes of one token per sequence. Returns the decode passes' stats, summed over the
// sequences (each pass's weight bytes once, its time once).
absl::StatusOr<ForwardStats> RunTogether(std::vector<std::unique_ptr<Session>>& sessions,
                                         BatchState& batch, const std::vector<int32_t>& tokens,
                                         int64_t steps) {
  const size_t count = sessions.size();
  std::vector<Session::Pass> passes(count);
  auto step = [&](int64_t t) -> absl::Status {
    for (size_t i = 0; i < count; ++i) {
      passes[i] = {sessions[i].get(), std::span(tokens).subspan((t * count + i) % tokens.size(), 1),
                   Logits::kLast};
    }
    return Session::EvaluateTogether(passes, batch).status();
  };
  for (auto& session : sessions) session->Reset();
  if (absl::Status s = step(0); !s.ok()) return s;
  for (auto& session : sessions) session->ResetStats();
  const auto start = std::chrono::steady_clock::now();
  for (int64_t t = 1; t <= steps; ++t) {
    if (absl::Status s = step(t); !s.ok()) return s;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ForwardStats total;
  for (auto& session : sessions) total += session->stats();
  total.seconds = seconds;  // the passes' wall time, once (the sessions' shares add up to it)
  return total;
}

// `repetitions` timed runs of `run_once` after one warm-up run.
absl::StatusOr<Measurement> Measure(const std::function<absl::StatusOr<ForwardStats>()>& run_once,
                                    int repetitions) {
  Measurement m;
  for (int r = -1; r < repetitions; ++r) {  // r = -1: warm-up
    absl::StatusOr<ForwardStats> stats = run_once();
    if (!stats.ok()) return stats.status();
    if (r < 0) continue;
    m.tokens_per_second.push_back(stats->tokens / stats->seconds);
    m.gbps.push_back(stats->EffectiveGBps());
    m.bytes_per_token = static_cast<double>(stats->weight_bytes + stats->kv_bytes) / stats->tokens;
  }
  return m;
}

int Main(int argc, char** argv) {
  CLI::App app{
      "Measure prompt processing and decode speed of a .pi model, as llama-bench does.\n\n"
      "Example:\n"
      "  pi-decode-bench -m stories260K.pi -p 512 -n 128 -t 2 -r 5\n"
      "  pi-decode-bench -m stories260K.pi -p 0 -n 32 --sequences 4   # 4 sequences together",
      kProgram};
  std::string model_path;
  int64_t prompt = 512, generate = 128, batch = 256;
  int threads = -1, repetitions = 5;
  int64_t sequences = 1;
  std::string cache_type = "f16";
  bool csv = false;
  app.add_option("-m,--model", model_path, "model file (.pi)")->required();
  app.add_option("-p,--n-prompt", prompt, "prompt tokens (0: skip)")->capture_default_str();
  app.add_option("-n,--n-gen", generate, "generated tokens (0: skip)")->capture_default_str();
  app.add_option("-b,--batch-size", batch, "prompt tokens per pass")->capture_default_str();
  app.add_option("-t,--threads", threads, "threads (-1: all)")->capture_default_str();
  app.add_option("-r,--repetitions", repetitions, "timed runs per test")->capture_default_str();
  app.add_option("--sequences", sequences,
                 "tg: this many sequences decode together, one batched pass per step "
                 "(aggregate tokens/s)")
      ->capture_default_str();
  app.add_option("--cache-type", cache_type, "KV cache type: f32, f16 or q8_0")
      ->capture_default_str();
  app.add_flag("--csv", csv, "one CSV line per test on stdout (for scripts)");
  AddVersionFlag(app, kProgram);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return ReportParseError(kProgram, app, e);
  }
  if (threads == 0 || threads < -1 || repetitions < 1 || prompt < 0 || generate < 0 || batch < 1 ||
      sequences < 1) {
    return ReportError(kProgram, absl::InvalidArgumentError(
                                     "-t must be -1 or positive, -r, -b and --sequences positive, "
                                     "-p and -n 0 or more"));
  }
  absl::StatusOr<DType> kv_type = ParseKvCacheType(cache_type);
  if (!kv_type.ok()) {
    return ReportError(kProgram, absl::InvalidArgumentError(absl::StrCat(
                                     "--cache-type must be ", kKvCacheTypeChoices, ", not '",
                                     cache_type, "'")));
  }
  cpu::SetThreads(threads > 0 ? threads
                              : std::max(1, static_cast<int>(std::thread::hardware_concurrency())));
  ModelLoadOptions load;
  load.populate = true;
  load.require_vocabulary = false;
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(model_path, load);
  if (!model.ok()) return ReportError(kProgram, model.status());
  ExecutorOptions exec;
  exec.batch_size = batch;
  Executor executor(**model, exec);
  SessionOptions options;
  options.context_length = std::max<int64_t>(1, std::max(prompt, generate + 1));
  options.cache_type = *kv_type;
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(executor, options);
  if (!session.ok()) return ReportError(kProgram, session.status());
  // --sequences: S sessions over one shared scratch of S tokens.
  std::vector<std::unique_ptr<Session>> together;
  std::shared_ptr<BatchState> batch_state;
  if (sequences > 1 && generate > 0) {
    absl::StatusOr<BatchState> created = BatchState::Create((*model)->config(), sequences);
    if (!created.ok()) return ReportError(kProgram, created.status());
    batch_state = std::make_shared<BatchState>(*std::move(created));
    SessionOptions each = options;
    each.context_length = generate + 1;
    each.sequences = sequences;
    each.batch = batch_state;
    for (int64_t i = 0; i < sequences; ++i) {
      absl::StatusOr<std::unique_ptr<Session>> s = Session::Create(executor, each);
      if (!s.ok()) return ReportError(kProgram, s.status());
      together.push_back(*std::move(s));
    }
  }

  // Random tokens, as llama-bench uses.
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> token(
      0, static_cast<int32_t>((*model)->config().vocab_size) - 1);
  const std::string dtype = (*model)->WeightDTypeSummary();
  // "mixed (q4_0, q8_0)" would split the CSV field.
  const std::string csv_dtype = absl::StrReplaceAll(dtype, {{", ", "+"}});
  if (csv) std::printf("model,dtype,test,threads,tokens_per_s,stddev,gb_per_s,mb_per_token\n");
  for (const auto& [name, count, one_by_one] :
       {std::tuple{"pp", prompt, false}, std::tuple{"tg", generate, true}}) {
    if (count == 0) continue;
    std::vector<int32_t> tokens(static_cast<size_t>(count));
    for (int32_t& t : tokens) t = token(rng);
    absl::StatusOr<Measurement> m;
    std::string test = absl::StrCat(name, count);
    if (one_by_one && !together.empty()) {
      m = Measure([&] { return RunTogether(together, *batch_state, tokens, count); }, repetitions);
      absl::StrAppend(&test, "x", sequences);
    } else {
      m = Measure([&] { return RunOnce(**session, tokens, one_by_one); }, repetitions);
    }
    if (!m.ok()) return ReportError(kProgram, m.status());
    if (csv) {
      std::printf("%s,%s,%s,%d,%.2f,%.2f,%.3f,%.4f\n", model_path.c_str(), csv_dtype.c_str(),
                  test.c_str(), cpu::Threads(), Measurement::Mean(m->tokens_per_second),
                  Measurement::StdDev(m->tokens_per_second), Measurement::Mean(m->gbps),
                  m->bytes_per_token / 1e6);
    } else {
      std::printf("%-40s %-6s %-6s t=%d  %10.2f ± %8.2f tokens/s  %7.3f GB/s  (%.3f MB/token)\n",
                  model_path.c_str(), dtype.c_str(), test.c_str(), cpu::Threads(),
                  Measurement::Mean(m->tokens_per_second),
                  Measurement::StdDev(m->tokens_per_second), Measurement::Mean(m->gbps),
                  m->bytes_per_token / 1e6);
    }
  }
  return 0;
}

}  // namespace
}  // namespace pinfer

int main(int argc, char** argv) { return pinfer::Main(argc, argv); }
