// Model shapes: the published dimensions of Llama-2 7B/13B/70B, OPT-6.7B/66B/175B and
// Falcon-7B/40B, or any custom shape, each with its architecture (llama, opt or falcon). The one
// registry of named shapes: pi-synth writes models at them and bench/place poses placement problems
// at them (ShapeModelConfig).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "runtime/model/model_config.h"

namespace pinfer::synth {

struct ShapeSpec {
  std::string name;                    // "llama-7b", or "custom" for custom shapes
  std::string architecture = "llama";  // llama | opt | falcon (runtime/model/model_config.h)
  int64_t dim = 0;
  int64_t n_ff = 0;
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t vocab_size = 0;
  int64_t context_length = 0;
  bool tied_embeddings = false;  // the classifier reuses token_embd (OPT, Falcon-7B)

  int64_t head_dim() const { return dim / n_heads; }
  // Weights of the model (embeddings, classifier, norms and biases included), as a parameter count.
  int64_t Parameters() const;
  // "llama-7b" or "custom:d=256,ff=688,layers=4,heads=4,kv_heads=4,vocab=512,ctx=4096" (the
  // architecture is not part of the text: --arch says it).
  std::string ToString() const;
};

// Parses llama-7b | llama-13b | llama-70b | opt-6.7b | opt-66b | opt-175b | falcon-7b |
// falcon-40b | custom:d=D,ff=F,layers=L,heads=H[,kv_heads=K][,vocab=V][,ctx=C]
// (kv_heads defaults to heads, vocab to 32000, ctx to 4096), with the architecture `arch` (llama,
// opt or falcon; empty: the named shape's family, llama for custom shapes), and validates it: d
// and ff multiples of 32 (one quantization block), d a multiple of heads with an even head size,
// heads a multiple of kv_heads (OPT: equal, it has no grouped KV), vocab at least 259 (3 special
// and 256 byte tokens). A named shape given another architecture keeps its dimensions and takes
// that architecture's embeddings (tied for opt and falcon, separate for llama).
absl::StatusOr<ShapeSpec> ParseShape(std::string_view text, std::string_view arch = "");

// The named shapes, for --help.
std::string NamedShapesHelp();

// The hyperparameters a model of this shape has: what each architecture fixes (norm, positions,
// gating, biases, parallel attention; runtime/model/model_config.h), RoPE θ 10000, norm ε 1e-5.
// The FFN activation is the architecture's: fatrelu:1 for llama (pi-synth's planted threshold),
// relu for opt and falcon (ReluFalcon); pi-synth may set another.
ModelConfig ShapeModelConfig(const ShapeSpec& shape);

}  // namespace pinfer::synth
