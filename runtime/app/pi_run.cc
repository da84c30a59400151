#include "runtime/app/pi_run.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "format/atomic_file.h"
#include "format/file_access.h"
#include "runtime/app/chat_conversation.h"
#include "runtime/app/runtime_flags.h"
#include "runtime/common/cli_common.h"
#include "nlohmann/json.hpp"
#include "runtime/exec/executor.h"
#include "runtime/exec/ffn_report.h"
#include "runtime/exec/generator.h"
#include "runtime/exec/perplexity.h"
#include "runtime/exec/session.h"
#include "runtime/text/chat_template.h"
#include "runtime/text/sampler.h"
#include "runtime/text/tokenizer.h"

namespace pinfer {
namespace {

constexpr char kLog[] = "pi-run: ";

// The whole file, minus one trailing newline (as llama.cpp reads -f).
absl::StatusOr<std::string> ReadTextFile(const std::string& path, const char* flag) {
  absl::StatusOr<std::string> read = ReadRegularFile(path);
  if (!read.ok())
    return absl::Status(read.status().code(), absl::StrCat(flag, " ", read.status().message()));
  std::string s = *std::move(read);
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

void WriteOut(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

void LogPhase(const char* name, const ForwardStats& stats) {
  if (stats.tokens == 0) return;
  const double per_second = stats.seconds > 0 ? stats.tokens / stats.seconds : 0.0;
  std::fprintf(stderr, "%s%s: %lld token%s in %.2f ms, %.1f tokens/s", kLog, name,
               static_cast<long long>(stats.tokens), stats.tokens == 1 ? "" : "s",
               stats.seconds * 1e3, per_second);
  const double per_token = static_cast<double>(stats.weight_bytes + stats.kv_bytes) / stats.tokens;
  std::fprintf(stderr, ", %.3f MB read per token (KV %.3f MB), effective %.2f GB/s\n",
               per_token / 1e6, static_cast<double>(stats.kv_bytes) / stats.tokens / 1e6,
               stats.EffectiveGBps());
}

nlohmann::json PhaseJson(const ForwardStats& stats) {
  const double tokens = static_cast<double>(std::max<int64_t>(1, stats.tokens));
  return {{"tokens", stats.tokens},
          {"seconds", stats.seconds},
          {"tokens_per_second", stats.seconds > 0 ? stats.tokens / stats.seconds : 0.0},
          {"bytes_per_token", static_cast<double>(stats.weight_bytes + stats.kv_bytes) / tokens},
          {"kv_bytes_per_token", static_cast<double>(stats.kv_bytes) / tokens},
          {"effective_gbps", stats.EffectiveGBps()}};
}

// --json: the phases, the FFN mode and each layer's selections, bytes and GB/s; `extra` adds
// keys (the perplexity). Nothing without --json.
nlohmann::json BytesJson(const PlanBytes& b) {
  return {{"workspace", b.workspace}, {"norms", b.norms},         {"attention", b.attention},
          {"kv", b.kv},               {"ffn", b.ffn},             {"predictor", b.predictor},
          {"output", b.output},       {"total", b.total()}};
}

absl::Status WriteJsonReport(const PiRunOptions& options, const LoadedRuntime& loaded,
                             const ForwardStats& prompt, const ForwardStats& decode,
                             nlohmann::json extra = nlohmann::json::object()) {
  if (options.json_path.empty()) return absl::OkStatus();
  const Executor& executor = *loaded.executor;
  nlohmann::json report = std::move(extra);
  // What the device holds, per part, next to the plan's budget and expectation.
  if (const Backend* device = executor.device(); device != nullptr) {
    nlohmann::json vram = {{"device", std::string(device->name())},
                           {"used", BytesJson(device->used())}};
    if (loaded.vram_budget) {
      vram["budget_bytes"] = *loaded.vram_budget;
      vram["plan"] = BytesJson(loaded.plan_bytes);
    }
    report["vram"] = std::move(vram);
  }
  report["prompt"] = PhaseJson(prompt);
  report["decode"] = PhaseJson(decode);
  report["ffn_mode"] = FfnMode(executor);
  nlohmann::json layers = nlohmann::json::array();
  for (const FfnLayerReport& r : FfnLayerReports(executor)) {
    nlohmann::json calls;
    for (int kind = 0; kind < 2; ++kind) {
      for (int m = 0; m < 3; ++m) {
        calls[kind == 0 ? "decode" : "prompt"][AutoModeName(static_cast<AutoMode>(m))] =
            r.mode_calls[kind][m];
      }
    }
    layers.push_back({{"layer", r.layer},
                      {"decode_mode", r.Modes(0)},
                      {"prompt_mode", r.Modes(1)},
                      {"calls", calls},
                      {"bytes_per_token", r.bytes_per_token},
                      {"predictor_bytes_per_token", r.predictor_bytes_per_token},
                      {"seconds_per_token", r.seconds_per_token},
                      {"effective_gbps", r.gbps}});
  }
  report["ffn_layers"] = std::move(layers);
  if (absl::Status s = WriteFileAtomically(options.json_path, report.dump(2) + "\n"); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("--json ", s.message()));
  }
  return absl::OkStatus();
}

// Everything a run needs: the shared runtime and this run's one session.
struct Runtime {
  LoadedRuntime loaded;
  std::unique_ptr<Session> session;
  const Tokenizer* tokenizer = nullptr;
};

absl::StatusOr<Runtime> Load(const PiRunOptions& options) {
  Runtime rt;
  absl::StatusOr<LoadedRuntime> loaded = LoadRuntime(options.runtime, kLog);
  if (!loaded.ok()) return loaded.status();
  rt.loaded = *std::move(loaded);
  rt.tokenizer = rt.loaded.tokenizer.get();
  absl::StatusOr<std::unique_ptr<Session>> s =
      Session::Create(*rt.loaded.executor, options.runtime.session_options());
  if (!s.ok()) return s.status();
  rt.session = *std::move(s);
  LogRuntimeSummary(kLog, options.runtime, rt.loaded, rt.session->context_length(),
                    rt.session->KvCacheBytes());
  return rt;
}

absl::Status RunPerplexity(Runtime& rt, const PiRunOptions& options, const std::string& text) {
  PerplexityOptions ppl;
  ppl.max_chunks = options.chunks;
  ppl.on_chunk = [](int64_t chunk, int64_t chunks, double value) {
    std::fprintf(stderr, "[%lld]%.4f,%s", static_cast<long long>(chunk), value,
                 chunk == chunks ? "\n" : "");
    std::fflush(stderr);
  };
  absl::StatusOr<PerplexityResult> result =
      ComputePerplexity(*rt.session, *rt.tokenizer, text, ppl);
  if (!result.ok()) {
    return absl::Status(
        result.status().code(),
        absl::StrCat("--perplexity ", options.perplexity_file, ": ", result.status().message()));
  }
  std::fprintf(
      stderr, "%sperplexity over %lld chunks of %lld tokens (%lld scored, text of %lld)\n", kLog,
      static_cast<long long>(result->chunks), static_cast<long long>(rt.session->context_length()),
      static_cast<long long>(result->scored_tokens), static_cast<long long>(result->text_tokens));
  LogPhase("evaluation", result->stats);
  LogFfnReport(kLog, *rt.loaded.executor);
  if (absl::Status s = WriteJsonReport(options, rt.loaded, result->stats, {},
                                       {{"perplexity", result->ppl}});
      !s.ok()) {
    return s;
  }
  WriteOut(
      absl::StrFormat("Final estimate: PPL = %.4f +/- %.5f\n", result->ppl, result->ppl_error));
  return absl::OkStatus();
}

// The note on stderr at each context shift (plain generation and -cnv alike).
void LogContextShift(const ContextShift& shift) {
  std::fprintf(stderr, "\n%scontext shift: kept the first %lld tokens, dropped the next %lld\n",
               kLog, static_cast<long long>(shift.kept), static_cast<long long>(shift.discarded));
}

// The generation settings of every turn: the token budget and the context shift, which keeps the
// first `--keep` prompt tokens after BOS (llama.cpp's n_keep), at most the whole prompt. Without a
// budget (-n -1: until EOS or a full context) there is no shift: a model that never chooses EOS
// (stories260K) would generate forever.
GenerationOptions GenerationFor(const PiRunOptions& options, std::span<const int32_t> prompt,
                                int32_t bos) {
  GenerationOptions generation;
  generation.max_tokens = options.n_predict;
  generation.context_shift = options.context_shift && options.n_predict >= 0;
  const int64_t n = static_cast<int64_t>(prompt.size());
  const int64_t with_bos = !prompt.empty() && prompt.front() == bos ? 1 : 0;
  generation.keep_tokens = options.keep < 0 ? n : std::min(n, options.keep + with_bos);
  generation.on_context_shift = LogContextShift;
  return generation;
}

// Generates after `prompt` (appended to the session), streaming each token to stdout.
absl::StatusOr<GenerationResult> GenerateAndStream(Runtime& rt, Sampler& sampler,
                                                   std::span<const int32_t> prompt,
                                                   const GenerationOptions& generation) {
  absl::StatusOr<GenerationResult> result =
      Generate(*rt.session, sampler, *rt.tokenizer, prompt, generation, [&](int32_t token) {
        WriteOut(rt.tokenizer->TokenToPiece(token));
        return true;
      });
  if (!result.ok()) return result.status();
  if (result->context_full) {
    std::fprintf(stderr, "\n%sthe context of %lld tokens is full%s\n", kLog,
                 static_cast<long long>(rt.session->context_length()),
                 generation.context_shift ? " (--keep leaves nothing to drop)" : "");
  }
  return result;
}

// The run's sampling (a random seed unless --seed), logged on one line. A greedy run (temp 0) says
// so instead of listing samplers and a seed that play no part in it.
SamplerParams ChooseSampling(const PiRunOptions& options) {
  SamplerParams sampling = options.sampling;
  if (sampling.temperature <= 0.0f) {
    if (sampling.repeat_penalty == 1.0f) {
      std::fprintf(stderr, "%ssampling: greedy\n", kLog);
    } else {
      std::fprintf(stderr, "%ssampling: greedy, repeat-penalty %.2f (last %d)\n", kLog,
                   sampling.repeat_penalty, sampling.repeat_last_n);
    }
    return sampling;
  }
  if (!options.seed_given) sampling.seed = std::random_device{}();
  std::fprintf(stderr,
               "%ssampling: temp %.2f, top-k %d, top-p %.2f, min-p %.2f, repeat-penalty "
               "%.2f (last %d), seed %llu\n",
               kLog, sampling.temperature, sampling.top_k, sampling.top_p, sampling.min_p,
               sampling.repeat_penalty, sampling.repeat_last_n,
               static_cast<unsigned long long>(sampling.seed));
  return sampling;
}

absl::Status RunGeneration(Runtime& rt, const PiRunOptions& options, std::string prompt) {
  const Tokenizer& tokenizer = *rt.tokenizer;
  std::vector<int32_t> tokens = tokenizer.Encode(prompt, /*add_special=*/true);
  absl::StatusOr<PromptFit> fit =
      FitPromptToContext(std::move(tokens), rt.session->context_length(), options.n_predict,
                         options.truncate, tokenizer.bos());
  if (!fit.ok()) return fit.status();
  if (fit->dropped > 0) {
    std::fprintf(stderr, "%s--truncate: dropped the first %lld prompt tokens to fit the context\n",
                 kLog, static_cast<long long>(fit->dropped));
    const bool bos = !fit->tokens.empty() && fit->tokens.front() == tokenizer.bos();
    prompt = tokenizer.Decode(std::span<const int32_t>(fit->tokens).subspan(bos ? 1 : 0));
  }

  Sampler sampler(ChooseSampling(options));

  ForwardStats prompt_stats, decode_stats;
  WriteOut(prompt);
  const GenerationOptions generation = GenerationFor(options, fit->tokens, tokenizer.bos());
  absl::StatusOr<GenerationResult> result = GenerateAndStream(rt, sampler, fit->tokens, generation);
  if (!result.ok()) return result.status();
  prompt_stats += result->prompt;
  decode_stats += result->decode;
  int32_t pending = result->pending_token;

  if (options.interactive) {
    std::fprintf(stderr, "\n%sinteractive: type a line and press enter; Ctrl-D ends\n", kLog);
    const bool echoed_by_terminal = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    std::string line;
    while (true) {
      std::fprintf(stderr, "\n> ");
      std::fflush(stderr);
      if (!std::getline(std::cin, line)) break;
      const std::vector<int32_t> typed = tokenizer.Encode(line, /*add_special=*/false);
      // stdout records the whole text the model saw, typed lines included, unless the terminal
      // already shows what the user typed.
      if (!echoed_by_terminal) {
        for (int32_t token : typed) WriteOut(tokenizer.TokenToPiece(token));
      }
      std::vector<int32_t> input;
      if (pending >= 0) input.push_back(pending);
      input.insert(input.end(), typed.begin(), typed.end());
      if (input.empty()) continue;
      // A context shift makes room unless the kept tokens and the line fill the context.
      const int64_t room =
          rt.session->context_length() -
          (generation.context_shift ? generation.keep_tokens : rt.session->position());
      if (static_cast<int64_t>(input.size()) >= room) {
        std::fprintf(stderr, "%sthe context is full: starting a new conversation\n", kLog);
        rt.session->Reset();
        sampler.Reset();
        input.assign(1, tokenizer.bos());
        input.insert(input.end(), typed.begin(), typed.end());
        absl::StatusOr<PromptFit> refit =
            FitPromptToContext(std::move(input), rt.session->context_length(), options.n_predict,
                               /*truncate=*/true, tokenizer.bos());
        if (!refit.ok()) return refit.status();
        input = std::move(refit->tokens);
      }
      absl::StatusOr<GenerationResult> turn = GenerateAndStream(rt, sampler, input, generation);
      if (!turn.ok()) return turn.status();
      prompt_stats += turn->prompt;
      decode_stats += turn->decode;
      pending = turn->pending_token;
    }
  }
  WriteOut("\n");
  LogPhase("prompt", prompt_stats);
  LogPhase("decode", decode_stats);
  LogFfnReport(kLog, *rt.loaded.executor);
  return WriteJsonReport(options, rt.loaded, prompt_stats, decode_stats);
}

// -cnv: user messages, one per line on stdin (the first from -p or -f when given), each answered
// on stdout with the assistant's reply and a newline; "/exit" or the end of stdin ends the chat.
// The "> " prompts and the notes go to stderr, so that stdout holds the replies only. A full
// context shifts (ChatContextShift) unless --no-context-shift: then a turn that does not fit starts
// the chat over, and a reply that fills the context is cut.
absl::Status RunChat(Runtime& rt, const PiRunOptions& options, const std::string& first_message) {
  absl::StatusOr<ChatTemplate> chat_template =
      ChatTemplate::ForVocabulary(rt.tokenizer->vocabulary(), options.chat_template);
  if (!chat_template.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--chat-template: ", chat_template.status().message()));
  }
  Sampler sampler(ChooseSampling(options));
  std::fprintf(stderr, "%schat template %s%s\n", kLog, chat_template->Describe().c_str(),
               options.system.empty() ? "" : "; with a system message");
  ChatContextShift shift;
  shift.enabled = options.context_shift;
  shift.keep = options.keep;  // pi-run's main makes -1 (the system message) the default with -cnv
  shift.during_reply = options.n_predict >= 0;
  shift.on_shift = LogContextShift;
  ChatConversation chat(*rt.session, sampler, *rt.tokenizer, *chat_template, options.system,
                        std::move(shift));
  ForwardStats prompt_stats, decode_stats;
  auto answer = [&](const std::string& message) -> absl::Status {
    absl::StatusOr<ChatTurnResult> turn =
        chat.Turn(message, options.n_predict, [](std::string_view text) { WriteOut(text); });
    if (!turn.ok()) return turn.status();
    WriteOut("\n");
    if (turn->restarted) {
      std::fprintf(stderr, "%sthe context was full: the chat started over from this message\n",
                   kLog);
    }
    if (turn->context_full) {
      std::fprintf(stderr, "%sthe context of %lld tokens is full: the reply was cut%s\n", kLog,
                   static_cast<long long>(rt.session->context_length()),
                   options.context_shift && options.n_predict >= 0
                       ? " (--keep leaves nothing to drop)"
                       : "");
    }
    prompt_stats += turn->prompt;
    decode_stats += turn->decode;
    return absl::OkStatus();
  };

  if (!first_message.empty()) {
    if (absl::Status s = answer(first_message); !s.ok()) return s;
  }
  std::fprintf(stderr, "%schat: type a message and press enter; /exit or Ctrl-D ends\n", kLog);
  std::string line;
  while (true) {
    std::fprintf(stderr, "> ");
    std::fflush(stderr);
    if (!std::getline(std::cin, line)) {
      std::fputc('\n', stderr);  // ends the "> " line
      break;
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line == "/exit") break;
    if (line.empty()) continue;
    if (absl::Status s = answer(line); !s.ok()) return s;
  }
  LogPhase("prompt", prompt_stats);
  LogPhase("decode", decode_stats);
  LogFfnReport(kLog, *rt.loaded.executor);
  return WriteJsonReport(options, rt.loaded, prompt_stats, decode_stats);
}

// -cnv excludes the other modes; --system and --chat-template need it.
absl::Status ValidateChatOptions(const PiRunOptions& options) {
  if (!options.conversation) {
    if (!options.system.empty()) return absl::InvalidArgumentError("--system needs -cnv");
    if (!options.chat_template.empty()) {
      return absl::InvalidArgumentError("--chat-template needs -cnv");
    }
    return absl::OkStatus();
  }
  if (options.interactive) {
    return absl::InvalidArgumentError(
        "-cnv and -i cannot be combined (-i continues the text, -cnv chats)");
  }
  if (!options.perplexity_file.empty()) {
    return absl::InvalidArgumentError("-cnv and --perplexity cannot be combined");
  }
  if (options.truncate) return absl::InvalidArgumentError("--truncate does not apply to -cnv");
  if (!options.chat_template.empty()) {
    if (absl::StatusOr<ChatFormat> f = ParseChatFormat(options.chat_template); !f.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--chat-template: ", f.status().message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidatePiRunOptions(const PiRunOptions& options) {
  if (absl::Status s = ValidateRuntimeFlags(options.runtime); !s.ok()) return s;
  if (options.n_predict < -1) {
    return absl::InvalidArgumentError(
        absl::StrCat("-n must be -1 (no limit) or a token count, got ", options.n_predict));
  }
  if (options.chunks < -1 || options.chunks == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--chunks must be positive (or -1: all), got ", options.chunks));
  }
  if (!options.perplexity_file.empty() && options.interactive) {
    return absl::InvalidArgumentError("--perplexity and -i cannot be combined");
  }
  if (options.keep < -1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--keep must be -1 (the whole prompt) or a token count, got ", options.keep));
  }
  if (!options.prompt_file.empty() && !options.prompt.empty()) {
    return absl::InvalidArgumentError("-p and -f cannot be combined");
  }
  if (absl::Status s = ValidateChatOptions(options); !s.ok()) return s;
  return options.sampling.Validate();
}

absl::Status RunPiRun(const PiRunOptions& options) {
  if (absl::Status s = ValidatePiRunOptions(options); !s.ok()) return s;
  // Inputs are read before the model, so that a wrong path fails at once.
  std::string text = options.prompt;
  if (!options.perplexity_file.empty() || !options.prompt_file.empty()) {
    const bool ppl = !options.perplexity_file.empty();
    absl::StatusOr<std::string> file = ReadTextFile(
        ppl ? options.perplexity_file : options.prompt_file, ppl ? "--perplexity" : "-f");
    if (!file.ok()) return file.status();
    text = *std::move(file);
  }
  absl::StatusOr<Runtime> rt = Load(options);
  if (!rt.ok()) return rt.status();
  if (!options.perplexity_file.empty()) return RunPerplexity(*rt, options, text);
  if (options.conversation) return RunChat(*rt, options, text);
  return RunGeneration(*rt, options, std::move(text));
}

}  // namespace pinfer
