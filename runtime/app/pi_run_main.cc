// pi-run: generate text with a .pi model, or measure its perplexity (flags as in llama.cpp).
#include <cstdint>
#include <limits>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "runtime/app/pi_run.h"
#include "runtime/app/runtime_flags.h"
#include "runtime/common/cli_common.h"
#include "runtime/common/cli_flags.h"

namespace pinfer {
namespace {

constexpr char kProgram[] = "pi-run";

int Main(int argc, char** argv) {
  CLI::App app{
      "Run a .pi model on the CPU: generate text, chat, or measure perplexity.\n"
      "Generated text goes to stdout; the model summary and timings go to stderr.\n\n"
      "Examples:\n"
      "  pi-run -m stories260K.pi -p \"Once upon a time\" -n 48 --temp 0\n"
      "  pi-run -m stories260K.pi -p \"\" -n 64 --temp 0.8 --top-p 0.9 --seed 42\n"
      "  pi-run -m stories260K.pi -i\n"
      "  pi-run -m stories260K.pi --perplexity tests/data/text/tinystories_valid_head.txt "
      "-c 256 --chunks 40",
      kProgram};
  PiRunOptions options;
  SamplerParams& sampling = options.sampling;
  int64_t seed = -1;
  AddRuntimeFlags(app, options.runtime);
  app.add_option("-p,--prompt", options.prompt, "prompt; \"\" (the default) generates from BOS");
  app.add_option("-f,--file", options.prompt_file, "read the prompt from a file");
  app.add_option("-n,--n-predict", options.n_predict,
                 "tokens to generate (-1: until EOS or a full context)")
      ->capture_default_str();
  app.add_option("--temp", sampling.temperature, "temperature (0: greedy)")->capture_default_str();
  app.add_option("--top-k", sampling.top_k, "top-k sampling (0: off)")->capture_default_str();
  app.add_option("--top-p", sampling.top_p, "top-p sampling (1: off)")->capture_default_str();
  app.add_option("--min-p", sampling.min_p, "min-p sampling (0: off)")->capture_default_str();
  app.add_option("--repeat-penalty", sampling.repeat_penalty, "repetition penalty (1: off)")
      ->capture_default_str();
  app.add_option("--repeat-last-n", sampling.repeat_last_n, "tokens the penalty looks back over")
      ->capture_default_str();
  app.add_option("--seed", seed, "random seed (-1: random)")
      ->check(IntegerIn(0, std::numeric_limits<int64_t>::max(), -1))
      ->capture_default_str();
  app.add_flag("-i,--interactive", options.interactive,
               "after the prompt, read lines from stdin and continue the text");
  app.add_flag("--truncate", options.truncate,
               "drop the start of a prompt that does not fit the context instead of failing");
  app.add_option(
      "--perplexity", options.perplexity_file,
      "compute the perplexity of a text file (llama.cpp's method) instead of generating");
  app.add_option("--chunks", options.chunks, "perplexity: chunks to evaluate (-1: all)")
      ->capture_default_str();
  AddVersionFlag(app, kProgram);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return ReportParseError(kProgram, app, e);
  }
  options.seed_given = seed >= 0;
  if (seed >= 0) sampling.seed = static_cast<uint64_t>(seed);
  if (absl::Status s = RunPiRun(options); !s.ok()) return ReportError(kProgram, s);
  return 0;
}

}  // namespace
}  // namespace pinfer

int main(int argc, char** argv) { return pinfer::Main(argc, argv); }
