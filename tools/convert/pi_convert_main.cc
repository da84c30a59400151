// pi-convert: llama2.c, GGUF or HF safetensors -> model.pi
#include <filesystem>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/app/cli_common.h"
#include "tools/convert/converter.h"
#include "tools/convert/llama2c_source.h"

namespace pinfer {
namespace {

constexpr char kProgram[] = "pi-convert";

absl::StatusOr<SourceModel> ReadSource(const std::string& source, const Llama2cOptions& llama2c) {
  if (!std::filesystem::exists(source)) {
    return absl::NotFoundError(absl::StrCat(source, ": no such file or directory"));
  }
  if (LooksLikeLlama2c(source)) return ReadLlama2c(source, llama2c);
  return absl::InvalidArgumentError(
      absl::StrCat(source, ": unrecognised model format (expected a llama2.c checkpoint)"));
}

int Main(int argc, char** argv) {
  CLI::App app{
      "Convert a model to pinfer's packed .pi format.\n\n"
      "Sources: llama2.c checkpoints (v0 fp32, v2 Q8_0; with --tokenizer).\n\n"
      "Example:\n"
      "  pi-convert models/stories260K/stories260K.bin --tokenizer models/stories260K/tok512.bin "
      "-o stories260K.pi\n"
      "  pi-convert models/relu-llama-260k/model_q80.bin --tokenizer "
      "models/relu-llama-260k/tok1024.bin \\\n"
      "      --ffn-act shifted_relu:0.25 --norm-act shifted_relu:1.0 -o relu.pi",
      kProgram};
  std::string source, output, tokenizer, dtype_name, ffn_act = "silu", norm_act = "none";
  bool quiet = false;
  app.add_option("source", source, "model file or directory")->required();
  app.add_option("-o,--output", output, "output .pi file")->required();
  app.add_option("--tokenizer", tokenizer, "tokenizer file (llama2.c tokenizer.bin)");
  app.add_option("--dtype", dtype_name,
                 "dtype of the weight matrices: f32, f16, bf16, q8_0 or q4_0 (default: as the source)");
  app.add_option("--ffn-act", ffn_act,
                 "FFN activation where the source does not say: silu|gelu|relu|relu2|drelu|"
                 "fatrelu:T|shifted_relu:S")
      ->capture_default_str();
  app.add_option("--norm-act", norm_act, "activation after the norms: none|shifted_relu:S")
      ->capture_default_str();
  app.add_flag("-q,--quiet", quiet, "no progress output");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  ConvertOptions options;
  options.command_line = JoinCommandLine(argc, argv);
  options.progress = !quiet;
  if (!dtype_name.empty()) {
    absl::StatusOr<DType> dtype = ParseDType(dtype_name);
    if (!dtype.ok()) return ReportError(kProgram, dtype.status());
    if (*dtype == DType::kI32 || *dtype == DType::kU8) {
      return ReportError(kProgram, absl::InvalidArgumentError(absl::StrCat(
                                       "--dtype ", dtype_name, " is not a weight dtype (f32, f16, "
                                       "bf16, q8_0 or q4_0)")));
    }
    options.dtype = *dtype;
  }
  Llama2cOptions llama2c;
  llama2c.tokenizer_path = tokenizer;
  absl::StatusOr<Activation> ffn = Activation::Parse(ffn_act);
  if (!ffn.ok()) return ReportError(kProgram, ffn.status());
  absl::StatusOr<Activation> norm = Activation::Parse(norm_act, /*for_norm=*/true);
  if (!norm.ok()) return ReportError(kProgram, norm.status());
  llama2c.ffn_act = *ffn;
  llama2c.norm_act = *norm;

  absl::StatusOr<SourceModel> model = ReadSource(source, llama2c);
  if (!model.ok()) return ReportError(kProgram, model.status());
  absl::StatusOr<ConvertReport> report = ConvertModel(*model, output, options);
  if (!report.ok()) return ReportError(kProgram, report.status());
  std::fprintf(stderr, "%s: wrote %s (%s, %d tensors) from %s in %.2f s\n", kProgram,
               output.c_str(), FormatBytes(report->output_bytes).c_str(), report->tensors,
               model->format.c_str(), report->seconds);
  return 0;
}

}  // namespace
}  // namespace pinfer

int main(int argc, char** argv) { return pinfer::Main(argc, argv); }
