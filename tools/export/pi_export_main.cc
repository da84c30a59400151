// pi-export: write a model.pi (and its predictor) as a GGUF for llama.cpp or PowerInfer.
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "runtime/common/cli_common.h"
#include "runtime/common/cli_flags.h"
#include "tools/export/gguf_export.h"

namespace pinfer {
namespace {

constexpr char kProgram[] = "pi-export";

int Main(int argc, char** argv) {
  RemoveTemporaryFilesOnInterrupt();
  CLI::App app{
      "Write a .pi model as a GGUF that another engine runs.\n"
      "  --format llama.cpp (default): a plain llama.cpp GGUF of a SiLU llama or of a Falcon "
      "(llama.cpp's falcon layout: fused attn_qkv, attn_norm_2 for the 40B layout); ffn_down is "
      "transposed back to llama.cpp's layout, a tied classifier is left to token_embd. OPT is "
      "refused (llama.cpp has no OPT).\n"
      "  --format powerinfer: a PowerInfer GGUF (magic PWRI) of a plain-ReLU llama with its "
      "predictor (model.predictor.pi, --predictor) as blk.N.fc1/fc2, ffn_down_t as stored and "
      "the predictor's one threshold as powerinfer.sparse_threshold. PowerInfer's predictor has "
      "no biases and one global threshold, and reads the residual before ffn_norm (fc1 = W1 . "
      "diag(ffn_norm)); a predictor with biases or per-layer thresholds is refused: train one "
      "with pi-train-predictor --powerinfer-compatible, or import PowerInfer's own with "
      "pi-train-predictor --import. (PowerInfer's activation_N.pt files: pi-train-predictor "
      "--export-activations DIR.)\n"
      "--dtype keep (default) copies every matrix as stored; f32, f16, q8_0 or q4_0 re-encode "
      "them (1-D tensors stay f32; rows that are not whole blocks are written f16). The file "
      "appears atomically.\n\n"
      "Examples:\n"
      "  pi-export -m stories.pi -o stories.gguf --dtype f16\n"
      "  llama-cli -m stories.gguf -p \"Once upon a time\" -n 32 --temp 0\n"
      "  pi-export -m relu.pi --format powerinfer -o relu.powerinfer.gguf\n"
      "  pi-export -m relu.pi --format powerinfer --predictor relu.predictor.pi "
      "--predictor-dtype f32 -o relu.powerinfer.gguf --json",
      kProgram};
  ExportOptions options;
  std::string format = "llama.cpp", dtype = "keep", predictor_dtype = "f16";
  bool json = false, quiet = false;
  app.add_option("-m,--model", options.model_path, "model file (.pi)")->required();
  app.add_option("-o,--output", options.output_path, "GGUF file to write")->required();
  app.add_option("--format", format, "llama.cpp or powerinfer")->capture_default_str();
  app.add_option("--dtype", dtype, "matrices: keep, f32, f16, q8_0 or q4_0")->capture_default_str();
  app.add_option("--predictor", options.predictor_path,
                 "--format powerinfer: the predictor (default: beside the model, "
                 "model.predictor.pi)");
  app.add_option("--predictor-dtype", predictor_dtype,
                 "--format powerinfer: dtype of fc1/fc2 (f32, f16, q8_0 or q4_0)")
      ->capture_default_str();
  app.add_flag("--json", json, "print the report as JSON");
  app.add_flag("-q,--quiet", quiet, "no progress on stderr");
  AddVersionFlag(app, kProgram);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return ReportParseError(kProgram, app, e);
  }
  if (format == "llama.cpp") {
    options.format = ExportFormat::kLlamaCpp;
  } else if (format == "powerinfer") {
    options.format = ExportFormat::kPowerInfer;
  } else {
    return ReportError(kProgram,
                       absl::InvalidArgumentError(absl::StrCat(
                           "--format must be llama.cpp or powerinfer, got '", format, "'")));
  }
  if (dtype != "keep") {
    absl::StatusOr<DType> d = ParseWeightDType(dtype);
    if (!d.ok() || *d == DType::kBF16) {
      return ReportError(kProgram,
                         absl::InvalidArgumentError(absl::StrCat(
                             "--dtype must be keep, f32, f16, q8_0 or q4_0, got '", dtype, "'")));
    }
    options.dtype = *d;
  }
  absl::StatusOr<DType> p = ParseWeightDType(predictor_dtype);
  if (!p.ok() || *p == DType::kBF16) {
    return ReportError(kProgram, absl::InvalidArgumentError(absl::StrCat(
                                     "--predictor-dtype must be f32, f16, q8_0 or q4_0, got '",
                                     predictor_dtype, "'")));
  }
  options.predictor_dtype = *p;
  options.progress = !quiet;
  return PrintReport(kProgram, ExportGguf(options), json);
}

}  // namespace
}  // namespace pinfer

int main(int argc, char** argv) { return pinfer::Main(argc, argv); }
