// Model shapes pi-synth can generate: the published dimensions of Llama-2 7B/13B/70B and
// Falcon-40B, or any custom llama-architecture shape.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace pinfer::synth {

struct ShapeSpec {
  std::string name;  // "llama-7b", or "custom" for custom shapes
  int64_t dim = 0;
  int64_t n_ff = 0;
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t vocab_size = 0;
  int64_t context_length = 0;

  int64_t head_dim() const { return dim / n_heads; }
  // Weights in the matrices (embeddings and classifier included), as a parameter count.
  int64_t Parameters() const;
  // "llama-7b" or "custom:d=256,ff=688,layers=4,heads=4,kv_heads=4,vocab=512,ctx=4096"
  std::string ToString() const;
};

// Parses llama-7b | llama-13b | llama-70b | falcon-40b |
// custom:d=D,ff=F,layers=L,heads=H[,kv_heads=K][,vocab=V][,ctx=C]
// (kv_heads defaults to heads, vocab to 32000, ctx to 4096), and validates it: d and ff multiples
// of 32 (one quantization block), d a multiple of heads with an even head size, heads a multiple
// of kv_heads, vocab at least 259 (3 special and 256 byte tokens).
absl::StatusOr<ShapeSpec> ParseShape(std::string_view text);

// The named shapes, for --help.
std::string NamedShapesHelp();

}  // namespace pinfer::synth
