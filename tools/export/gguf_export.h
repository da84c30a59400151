// pi-export: a model.pi (and its predictor) as a GGUF that llama.cpp or PowerInfer runs.
//
//   --format llama.cpp    a plain llama.cpp GGUF (architecture llama or falcon, magic "GGUF"):
//                         every weight under llama.cpp's name, ffn_down transposed back to
//                         [dim, n_ff] (GGUF ne {n_ff, dim}), the classifier omitted when the
//                         embeddings are tied (llama.cpp then reuses token_embd). llama.cpp's
//                         llama computes SiLU, so only SiLU llamas without a norm activation are
//                         exported. A Falcon (gelu_erf; llama.cpp computes the tanh form of GELU,
//                         within 1e-3 in probabilities on the golden fixtures) is written in
//                         llama.cpp's falcon layout (tools/convert/gguf_layouts.h): attn_qkv fused
//                         back from our q, k and v (q and k to half-split RoPE pairs; whole rows,
//                         so a quantized one is copied), attn_norm = our ffn_norm and, for the
//                         40B layout (attn_norm differs from ffn_norm), attn_norm_2 = attn_norm;
//                         ffn_up = the gate-less FFN's ffn_gate. OPT is refused: llama.cpp has no
//                         OPT.
//   --format powerinfer   a PowerInfer GGUF (magic "PWRI", what its llama.cpp needs for sparse
//                         inference): the weights with ffn_down_t as stored (neuron-major, ne
//                         {dim, n_ff}) instead of ffn_down, output.weight always (PowerInfer's
//                         loader requires it), and per layer fc1/fc2 from model.predictor.pi with
//                         the global threshold under powerinfer.sparse_threshold. PowerInfer's
//                         llama is a plain-ReLU model without a norm activation; its predictor has
//                         no biases, one global threshold and reads the residual before ffn_norm,
//                         so fc1 = W1 · diag(g) (g: ffn_norm's weight; the inverse of
//                         pi-train-predictor --import, see
//                         tools/train_predictor/powerinfer_import.h) and fc2 = W2. A predictor with
//                         non-zero biases or per-layer thresholds is refused: pi-train-predictor
//                         --powerinfer-compatible trains one that fits. ffn_down_t is written
//                         f16 unless it is f16 or q4_0: PowerInfer's CPU sparse axpy reads no
//                         other type (any other comes out as garbage text). Llama only:
//                         PowerInfer's OPT and ReluFalcon predictors read the residual before a
//                         LayerNorm, which no fc1 made from pinfer's predictor (on the normalized
//                         input) matches.
//
// --dtype keep writes every matrix in its stored dtype (through the one .pi-to-GGUF bytes function,
// tools/convert/gguf_writer.h); f32/f16/q8_0/q4_0 re-encode every matrix (1-D tensors stay f32); a
// matrix whose rows are not whole blocks of a quantized dtype is written as f16, and the report
// says which. The transposed ffn_down is re-encoded in any case (a quantized one requantizes).
// The output appears atomically (a failure leaves no file).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "format/dtype.h"
#include "nlohmann/json.hpp"

namespace pinfer {

enum class ExportFormat { kLlamaCpp, kPowerInfer };

struct ExportOptions {
  std::string model_path;
  std::string output_path;
  ExportFormat format = ExportFormat::kLlamaCpp;
  std::optional<DType> dtype;           // nullopt: keep the stored dtypes
  std::string predictor_path;           // powerinfer: "" = beside the model (model.predictor.pi)
  DType predictor_dtype = DType::kF16;  // fc1/fc2 (PowerInfer's convert.py writes f16)
  bool progress = true;
};

struct ExportReport {
  std::string model_path;
  std::string output_path;
  std::string format;  // "llama.cpp" or "powerinfer"
  std::string predictor_path;
  uint64_t bytes = 0;
  int64_t tensors = 0;
  std::vector<std::string> f16_fallback;  // matrices written f16: rows not whole blocks
  std::vector<std::string> axpy_f16;      // powerinfer: ffn_down_t written f16 (see the header)
  float threshold = 0;                    // powerinfer: powerinfer.sparse_threshold
  std::vector<std::string> notes;

  std::string ToText() const;
  nlohmann::json ToJson() const;
};

absl::StatusOr<ExportReport> ExportGguf(const ExportOptions& options);

}  // namespace pinfer
