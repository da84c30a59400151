// pi-synth's library: writes a synthetic model at a real shape, with planted activation locality,
// as model.pi (and optionally the same weights as a GGUF file for llama.cpp), streaming: memory
// stays bounded (a few tens of MiB plus the vocabulary) whatever the model size.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/synth/locality.h"
#include "bench/synth/shapes.h"
#include "bench/synth/synth_design.h"
#include "format/dtype.h"

namespace pinfer::synth {

// The .pi tensor holding the planted firing probabilities, [n_layers, n_ff] f32: row l, column i
// is the probability with which neuron i of layer l was planted to fire.
inline constexpr char kPlantedProbabilityTensor[] = "synth.firing_probability";

struct SynthOptions {
  ShapeSpec shape;             // with its architecture (llama, opt or falcon)
  DType dtype = DType::kQ4_0;  // of the weight matrices; norms are f32
  bool q4_0x16 = false;        // model.pi stores q4_0 dot-product matrices as pi-convert --q4_0x16
  LocalitySpec locality;
  // fatrelu:1 or relu with the same planted firing sets (README.md, "A ReLU model"); unset: the
  // architecture's (ArchitectureActivation).
  std::optional<SynthActivation> ffn_act;
  uint64_t seed = 0;
  std::string output_path;     // model.pi
  std::string gguf_path;       // empty: no GGUF
  std::string tokenizer_path;  // llama2.c tokenizer.bin of Llama 2; empty: DefaultTokenizerPath()
  std::string command_line;    // provenance.arguments
  int threads = 0;             // 0: all (OpenMP's default)
  bool progress = true;
};

struct SynthReport {
  uint64_t pi_bytes = 0;
  uint64_t gguf_bytes = 0;
  int64_t parameters = 0;
  double seconds = 0;
  double hot_probability = 0;  // p_hot of the firing law
  int64_t hot_neurons = 0;     // per layer
  int threads = 0;
  // Per layer: the modelled content energy per dimension at the FFN input (e in the README).
  std::vector<double> content_energy;
};

// The FFN activation a model of `architecture` gets by default: fatrelu (fatrelu:1) for llama,
// relu for opt (OPT's own) and falcon (ReluFalcon, what PowerInfer runs).
SynthActivation ArchitectureActivation(const std::string& architecture);

// Validates everything (shape, dtype, locality against the shape, tokenizer, output paths, free
// disk space) before creating any file; a failure at any point leaves no output file behind.
absl::StatusOr<SynthReport> WriteSyntheticModel(const SynthOptions& options);

}  // namespace pinfer::synth
