// pi-synth: a synthetic model at a real shape with planted activation locality, for benchmarks.
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/synth/synth_model.h"
#include "nlohmann/json.hpp"
#include "runtime/common/cli_common.h"
#include "runtime/common/cli_flags.h"

namespace pinfer::synth {
namespace {

constexpr char kProgram[] = "pi-synth";

// 6738415616 -> "6.74B", 3475712 -> "3.48M"
std::string FormatCount(int64_t n) {
  const auto v = static_cast<double>(n);
  if (v >= 1e9) return absl::StrFormat("%.2fB", v / 1e9);
  if (v >= 1e6) return absl::StrFormat("%.2fM", v / 1e6);
  return absl::StrCat(n);
}

int Main(int argc, char** argv) {
  RemoveTemporaryFilesOnInterrupt();
  CLI::App app{
      absl::StrCat(
          "Write a synthetic model at a real shape, with random weights scaled like a trained "
          "model's and planted activation locality (fatrelu or relu neurons whose firing "
          "probabilities "
          "follow a power law), of the llama, OPT or Falcon architecture, as model.pi and "
          "optionally (llama models) as a GGUF file for llama.cpp. For speed "
          "benchmarks only: the model says nothing about quality. bench/synth/README.md has the "
          "math.\n\nShapes:\n",
          NamedShapesHelp(),
          "\nExamples:\n"
          "  pi-synth --shape llama-7b --dtype q4_0 -o llama-7b-synth.pi --gguf "
          "llama-7b-synth.gguf\n"
          "  pi-synth --shape llama-70b --locality power-law:alpha=1.5,hot=0.04,density=0.1 "
          "--seed 7 -o llama-70b-synth.pi\n"
          "  pi-synth --shape custom:d=256,ff=704,layers=4,heads=4,vocab=512 --dtype q8_0 -o "
          "tiny.pi\n"
          "  pi-synth --shape opt-6.7b --dtype q4_0 --seed 1 -o opt-6.7b-synth.pi\n"
          "  pi-synth --shape custom:d=256,ff=1024,layers=2,heads=4,vocab=512 --arch falcon -o "
          "tiny-falcon.pi\n"),
      kProgram};
  std::string shape_text, dtype_name = "q4_0", locality_text = LocalitySpec().ToString();
  SynthOptions options;
  uint64_t seed = 0;
  bool quiet = false, json = false;
  app.add_option("--shape", shape_text,
                 "a named shape (below) or custom:d=..,ff=..,layers=..,heads=..[,kv_heads=..]"
                 "[,vocab=..][,ctx=..]")
      ->required();
  std::string arch;
  app.add_option("--arch", arch,
                 "architecture: llama, opt or falcon (default: the shape's family; llama for "
                 "custom shapes)");
  app.add_option("-o,--output", options.output_path, "output model.pi")->required();
  app.add_option("--gguf", options.gguf_path, "also write the same weights as this GGUF file");
  app.add_option("--dtype", dtype_name, "dtype of the weight matrices: f32, f16, bf16, q8_0, q4_0")
      ->capture_default_str();
  app.add_option("--locality", locality_text,
                 "planted firing probabilities: power-law:alpha=A,hot=H,density=D[,latent=K"
                 "[,noise=N]] (hot: fraction of neurons in the hot set; density: mean firing "
                 "probability; latent: the gates read K shared directions per layer, so that a "
                 "rank-2K predictor can learn which neurons fire; noise: the share of a gate's "
                 "variance outside them)")
      ->capture_default_str();
  std::string ffn_act_name;
  app.add_option("--ffn-act", ffn_act_name,
                 "FFN activation: fatrelu (fatrelu:1) or relu (plain ReLU, as PowerInfer computes "
                 "it, with the same planted firing sets: every gate is shifted down by 1) or gelu "
                 "(opt and falcon: gelu_erf, firing where |gelu| > gelu(1), the threshold "
                 "pi-profile calibrates); default: fatrelu for llama, relu for opt and falcon "
                 "(ReluFalcon)");
  app.add_option("--seed", seed, "random seed: the same seed gives the same bytes")
      ->capture_default_str();
  app.add_option("--tokenizer", options.tokenizer_path,
                 "llama2.c tokenizer.bin of the Llama 2 vocabulary (default: the copy in the "
                 "source tree, tests/data/tokenizers/llama2_tokenizer.bin)");
  app.add_option("-t,--threads", options.threads, "threads (default: all)");
  app.add_flag("--q4_0x16", options.q4_0x16,
               "with --dtype q4_0: store the matrices read by dot products as q4_0x16 in model.pi, "
               "as pi-convert --q4_0x16 does (the GGUF stays q4_0)");
  app.add_flag("--json", json, "print a JSON report on stdout");
  app.add_flag("-q,--quiet", quiet, "no progress output");
  AddVersionFlag(app, kProgram);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  absl::StatusOr<ShapeSpec> shape = ParseShape(shape_text, arch);
  if (!shape.ok()) return ReportError(kProgram, shape.status());
  absl::StatusOr<DType> dtype = ParseWeightDType(dtype_name);
  if (!dtype.ok()) {
    return ReportError(
        kProgram, absl::InvalidArgumentError(absl::StrCat("--dtype: ", dtype.status().message())));
  }
  absl::StatusOr<LocalitySpec> locality = ParseLocality(locality_text);
  if (!locality.ok()) return ReportError(kProgram, locality.status());
  if (ffn_act_name == "relu") {
    options.ffn_act = SynthActivation::kRelu;
  } else if (ffn_act_name == "fatrelu") {
    options.ffn_act = SynthActivation::kFatRelu;
  } else if (ffn_act_name == "gelu") {
    options.ffn_act = SynthActivation::kGeluErf;
  } else if (!ffn_act_name.empty()) {
    return ReportError(
        kProgram, absl::InvalidArgumentError(absl::StrCat("--ffn-act '", ffn_act_name,
                                                          "': expected fatrelu, relu or gelu")));
  }
  if (seed > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return ReportError(kProgram, absl::InvalidArgumentError("--seed must be below 2^63"));
  }
  if (options.threads < 0) {
    return ReportError(kProgram, absl::InvalidArgumentError("--threads must be positive"));
  }
  options.shape = *shape;
  options.dtype = *dtype;
  options.locality = *locality;
  options.seed = seed;
  options.command_line = JoinCommandLine(argc, argv);
  options.progress = !quiet;

  absl::StatusOr<SynthReport> report = WriteSyntheticModel(options);
  if (!report.ok()) return ReportError(kProgram, report.status());

  std::fprintf(
      stderr,
      "%s: wrote %s (%s%s%s) in %.1f s with %d threads: %s %s %s, %s parameters; %lld hot "
      "neurons per layer fire with p=%.3f, mean density %g\n",
      kProgram, options.output_path.c_str(), FormatBytes(report->pi_bytes).c_str(),
      options.gguf_path.empty() ? "" : absl::StrCat(", and ", options.gguf_path, " ").c_str(),
      options.gguf_path.empty() ? "" : FormatBytes(report->gguf_bytes).c_str(), report->seconds,
      report->threads, shape->architecture.c_str(), shape->ToString().c_str(), dtype_name.c_str(),
      FormatCount(report->parameters).c_str(), static_cast<long long>(report->hot_neurons),
      report->hot_probability, locality->density);
  if (json) {
    nlohmann::json j;
    j["output"] = options.output_path;
    j["output_bytes"] = report->pi_bytes;
    if (!options.gguf_path.empty()) {
      j["gguf"] = options.gguf_path;
      j["gguf_bytes"] = report->gguf_bytes;
    }
    j["shape"] = shape->ToString();
    j["dtype"] = dtype_name;
    j["parameters"] = report->parameters;
    j["locality"] = locality->ToString();
    j["architecture"] = shape->architecture;
    j["ffn_act"] =
        SynthActivationName(options.ffn_act.value_or(ArchitectureActivation(shape->architecture)));
    j["seed"] = seed;
    j["hot_neurons_per_layer"] = report->hot_neurons;
    j["hot_probability"] = report->hot_probability;
    j["content_energy_per_layer"] = report->content_energy;
    j["seconds"] = report->seconds;
    j["threads"] = report->threads;
    std::printf("%s\n", j.dump(2).c_str());
  }
  return 0;
}

}  // namespace
}  // namespace pinfer::synth

int main(int argc, char** argv) { return pinfer::synth::Main(argc, argv); }
