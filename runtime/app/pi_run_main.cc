// pi-run: generate text with a .pi model, or measure its perplexity (flags as in llama.cpp).
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "runtime/app/pi_run.h"
#include "runtime/app/runtime_flags.h"
#include "runtime/common/cli_common.h"
#include "runtime/common/cli_flags.h"

namespace pinfer {
namespace {

constexpr char kProgram[] = "pi-run";

// llama.cpp's multi-letter single-dash flags, which CLI11 cannot name, spelled as their long
// forms: -cnv is --conversation, -sys is --system, -ngl is --n-gpu-layers (SpellLlamaCppFlag).
std::vector<std::string> SpellLlamaCppFlags(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--") break;  // what follows is not a flag
    if (args[i] == "-cnv") args[i] = "--conversation";
    if (args[i] == "-sys") args[i] = "--system";
    args[i] = SpellLlamaCppFlag(args[i]);
  }
  return args;
}

int Main(int argc, char** argv) {
  CLI::App app{
      "Run a .pi model on the CPU: generate text, chat (-cnv), or measure perplexity.\n"
      "Generated text goes to stdout; the model summary and timings go to stderr.\n\n"
      "Examples:\n"
      "  pi-run -m stories260K.pi -p \"Once upon a time\" -n 48 --temp 0\n"
      "  pi-run -m stories260K.pi -p \"\" -n 64 --temp 0.8 --top-p 0.9 --seed 42\n"
      "  pi-run -m stories260K.pi -p \"Tom had a red ball\" -n 32 -i   # then type lines that "
      "continue the text\n"
      "  pi-run -m stories260K.pi -cnv --system \"You tell stories.\" -n 64   # a chat\n"
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
               "continue the text: after the prompt, each line read from stdin is appended to the "
               "text (no chat template: for a chat, -cnv) and the model continues it (Ctrl-D "
               "ends)");
  app.add_flag("--conversation", options.conversation,
               "-cnv: chat; each line on stdin is a user message, formatted with the model's chat "
               "template and answered on stdout (the reply, then a newline) until the end of the "
               "turn or -n tokens; the conversation stays in the KV cache; -p gives the first "
               "message; /exit or Ctrl-D ends");
  app.add_option("--system", options.system, "-sys: the chat's system message (with -cnv)");
  app.add_option("--chat-template", options.chat_template,
                 "chat format with -cnv: llama2, chatml or llama3 (default: the one the model's "
                 "chat template writes; chatml when the model records none or another, as "
                 "pi-server)");
  app.add_flag("--context-shift,!--no-context-shift", options.context_shift,
               "when the context is full, drop the oldest half of the tokens after --keep and go "
               "on (the default when -n sets a budget; with -cnv a turn that does not fit shifts "
               "too); --no-context-shift stops there (-cnv: a turn that does not fit starts the "
               "chat over from it, a reply that fills the context is cut)");
  CLI::Option* keep =
      app.add_option("--keep", options.keep,
                     "context shift: prompt tokens to keep after BOS (-1: the whole prompt; with "
                     "-cnv the default is -1: BOS and the system message as the template writes "
                     "it, up to the first user message's text; BOS alone without --system)")
          ->check(IntegerIn(0, std::numeric_limits<int64_t>::max(), -1))
          ->capture_default_str();
  app.add_flag("--truncate", options.truncate,
               "drop the start of a prompt that does not fit the context instead of failing");
  app.add_option(
      "--perplexity", options.perplexity_file,
      "compute the perplexity of a text file (llama.cpp's method) instead of generating");
  app.add_option("--chunks", options.chunks, "perplexity: chunks to evaluate (-1: all)")
      ->capture_default_str();
  app.add_option("--json", options.json_path,
                 "also write the run's report as JSON to this file: tokens/s and bytes per token "
                 "of the prompt and decode, and per FFN layer the selection it ran for decode and "
                 "for prompts, bytes per token (predictor included) and effective GB/s");
  AddVersionFlag(app, kProgram);
  try {
    std::vector<std::string> args = SpellLlamaCppFlags(argc, argv);
    std::vector<char*> arg_pointers;
    for (std::string& arg : args) arg_pointers.push_back(arg.data());
    app.parse(static_cast<int>(arg_pointers.size()), arg_pointers.data());
  } catch (const CLI::ParseError& e) {
    return ReportParseError(kProgram, app, e);
  }
  // A chat's "prompt" is its system message, which a shift keeps unless --keep says otherwise.
  if (options.conversation && keep->count() == 0) options.keep = -1;
  options.seed_given = seed >= 0;
  if (seed >= 0) sampling.seed = static_cast<uint64_t>(seed);
  if (absl::Status s = RunPiRun(options); !s.ok()) return ReportError(kProgram, s);
  return 0;
}

}  // namespace
}  // namespace pinfer

int main(int argc, char** argv) { return pinfer::Main(argc, argv); }
