// pi-convert: llama2.c, GGUF or HF safetensors -> model.pi
#include <cstdio>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runtime/common/cli_common.h"
#include "runtime/common/cli_flags.h"
#include "tools/convert/converter.h"
#include "tools/convert/source_reader.h"

namespace pinfer {
namespace {

constexpr char kProgram[] = "pi-convert";

absl::Status FlagError(const char* flag, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(flag, ": ", status.message()));
}

int Main(int argc, char** argv) {
  RemoveTemporaryFilesOnInterrupt();
  CLI::App app{
      "Convert a model to pinfer's packed .pi format.\n\n"
      "Sources: llama2.c checkpoints (v0 fp32, v2 Q8_0; with --tokenizer), GGUF v2/v3 files\n"
      "(llama, falcon; F32/F16/BF16/Q8_0/Q4_0 tensors; PowerInfer's sparse llama, bamboo,\n"
      "ReluFalcon and OPT), and HuggingFace\n"
      "directories (config.json + safetensors; Llama incl. Llama 3 RoPE scaling, Mistral,\n"
      "ReluLLaMA, ProSparse, Bamboo, OPT, Falcon).\n"
      "The FFN activation comes from the source where it says it (config.json, PowerInfer\n"
      "GGUFs); --ffn-act/--norm-act declare it where it does not, and override it otherwise.\n\n"
      "Examples:\n"
      "  pi-convert models/stories260K/stories260K.bin --tokenizer models/stories260K/tok512.bin "
      "-o stories260K.pi\n"
      "  pi-convert models/stories260K/stories260K.gguf --dtype q8_0 -o stories260K-q8.pi\n"
      "  pi-convert models/relu-llama-260k/model_q80.bin --tokenizer "
      "models/relu-llama-260k/tok1024.bin \\\n"
      "      --ffn-act shifted_relu:0.25 --norm-act shifted_relu:1.0 -o relu.pi\n"
      "  pi-convert ~/models/ReluLLaMA-7B --dtype q4_0 -o relullama-7b-q4.pi",
      kProgram};
  std::string source, output, tokenizer, dtype_name, ffn_act, norm_act;
  bool quiet = false, json = false;
  app.add_option("source", source, "model file (llama2.c, GGUF) or HF directory")->required();
  app.add_option("-o,--output", output, "output .pi file")->required();
  app.add_option("--tokenizer", tokenizer,
                 "tokenizer file: llama2.c tokenizer.bin (required for llama2.c); for HF "
                 "directories a tokenizer.model or tokenizer.json to use instead of theirs");
  app.add_option(
      "--dtype", dtype_name,
      "dtype of the weight matrices: f32, f16, bf16, q8_0 or q4_0 (default: as the source)");
  CLI::Option* ffn_flag = app.add_option(
      "--ffn-act", ffn_act,
      "FFN activation: silu|gelu|relu|relu2|drelu|fatrelu:T|shifted_relu:S (default: what the "
      "source says, else silu)");
  CLI::Option* norm_flag = app.add_option("--norm-act", norm_act,
                                          "activation after the norms: none|shifted_relu:S "
                                          "(default none)");
  bool ggml_q4_scales = false;
  app.add_flag("--ggml-q4-scales", ggml_q4_scales,
               "q4_0: ggml's scale rule, blocks byte-identical to llama-quantize's (default: the "
               "scale with the least error per block, same format, better quality)");
  bool pure = false;
  app.add_flag("--pure", pure,
               "with --dtype q4_0, quantize the classifier to q4_0 too (default: q8_0, as "
               "llama.cpp keeps it at higher precision)");
  bool q4_0x16 = false;
  app.add_flag("--q4_0x16", q4_0x16,
               "store the q4_0 matrices read by dot products (attn_q/k/v/output, ffn_gate, ffn_up, "
               "the classifier) as q4_0x16: the same blocks reordered so that a batch of a few "
               "tokens (servers, several sequences) costs little more than one; on this "
               "project's test machine it made single-sequence decode slower "
               "(bench/e2e/q4_0_layouts.sh), so it is not the default");
  app.add_flag("-q,--quiet", quiet, "no progress output");
  app.add_flag("--json", json, "print a JSON report on stdout");
  AddVersionFlag(app, kProgram);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  ConvertOptions options;
  options.command_line = JoinCommandLine(argc, argv);
  options.progress = !quiet && !json;
  if (ggml_q4_scales) options.q4_scales = Q4Scales::kGgml;
  options.pure = pure;
  options.q4_0x16 = q4_0x16;
  if (!dtype_name.empty()) {
    absl::StatusOr<DType> dtype = ParseWeightDType(dtype_name);
    if (!dtype.ok()) return ReportError(kProgram, FlagError("--dtype", dtype.status()));
    options.dtype = *dtype;
  }
  SourceOptions source_options;
  source_options.tokenizer_path = tokenizer;
  if (ffn_flag->count() > 0) {
    absl::StatusOr<Activation> ffn = Activation::Parse(ffn_act);
    if (!ffn.ok()) return ReportError(kProgram, FlagError("--ffn-act", ffn.status()));
    source_options.activations.ffn_act = *ffn;
  }
  if (norm_flag->count() > 0) {
    absl::StatusOr<Activation> norm = Activation::Parse(norm_act, /*for_norm=*/true);
    if (!norm.ok()) return ReportError(kProgram, FlagError("--norm-act", norm.status()));
    source_options.activations.norm_act = *norm;
  }

  absl::StatusOr<SourceModel> model = ReadSource(source, source_options);
  if (!model.ok()) return ReportError(kProgram, model.status());
  absl::StatusOr<ConvertReport> report = ConvertModel(*model, output, options);
  if (!report.ok()) return ReportError(kProgram, report.status());
  // Notes after success: a failure is always exactly one line.
  if (!json) {
    for (const std::string& note : model->notes) {
      std::fprintf(stderr, "%s: note: %s\n", kProgram, note.c_str());
    }
  }
  if (json) {
    nlohmann::json out = {{"output", output},
                          {"source", source},
                          {"source_format", model->format},
                          {"bytes", report->output_bytes},
                          {"tensors", report->tensors},
                          {"seconds", report->seconds},
                          {"ffn_act", model->config.ffn_act.ToString()},
                          {"norm_act", model->config.norm_act.ToString()},
                          {"notes", model->notes}};
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::fprintf(stderr, "%s: wrote %s (%s, %d tensors) from %s in %.2f s\n", kProgram,
               output.c_str(), FormatBytes(report->output_bytes).c_str(), report->tensors,
               model->format.c_str(), report->seconds);
  return 0;
}

}  // namespace
}  // namespace pinfer

int main(int argc, char** argv) { return pinfer::Main(argc, argv); }
