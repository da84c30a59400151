// What pi-run does once its flags are parsed: load the model, then generate (one prompt, then
// optionally lines typed on stdin that continue the text), chat (-cnv: user messages on stdin,
// formatted with the chat template) or compute a perplexity. Generated text goes to stdout as it is
// produced (in a chat, the assistant's replies only, one line each); everything else (model
// summary, timings, the perplexity progress, the "> " prompts) goes to stderr.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "runtime/app/runtime_flags.h"
#include "runtime/text/sampler.h"

namespace pinfer {

struct PiRunOptions {
  RuntimeFlags runtime;     // the model and how it executes (shared with pi-server)
  std::string prompt;       // -p; empty: generate from BOS alone
  std::string prompt_file;  // -f: read the prompt from this file
  int64_t n_predict = -1;   // -1: until EOS or a full context
  SamplerParams sampling;
  bool seed_given = false;   // else a random seed, logged
  bool interactive = false;  // -i: continue the text with each line typed
  // -cnv: a chat through the model's chat template (-p gives the first user message).
  bool conversation = false;
  std::string system;         // --system: the chat's system message
  std::string chat_template;  // --chat-template: "llama2" or "chatml"; empty: the model's
  bool truncate = false;
  // When the context is full, drop the oldest half of the tokens after the first kept ones and go
  // on (llama.cpp's context shift); off, or with n_predict -1: the generation stops there.
  bool context_shift = true;
  int64_t keep = 0;  // --keep: prompt tokens a shift keeps after BOS; -1: the whole prompt
  std::string perplexity_file;
  int64_t chunks = -1;
  std::string json_path;  // --json: the report as JSON (written at the end of the run)
};

// Checks flag values that do not depend on the model (names the flag in the message).
absl::Status ValidatePiRunOptions(const PiRunOptions& options);

absl::Status RunPiRun(const PiRunOptions& options);

}  // namespace pinfer
