// Hyperparameters of a model and their metadata keys in model.pi. pi-convert writes them with
// ToMetadata(); everything else reads them with FromMetadata().
//
// Conventions fixed at conversion, so the runtime has exactly one of each:
//   - RoPE rotates interleaved pairs (x[2i], x[2i+1]) of each head, as llama2.c and GGUF do;
//     pi-convert permutes the q/k rows of HF checkpoints (half-split pairs) into this layout.
//     `rope_source_layout` only records what the source used.
//   - Matrices are [out, in] row-major; FFN gate/up are [n_ff, dim], down is stored transposed as
//     [n_ff, dim] ("ffn_down_t"), so the three rows of one neuron are contiguous.
//   - A gate-less FFN (OPT's fc1 -> act -> fc2, ffn_gated false) stores fc1 as ffn_gate: the one
//     projection that decides whether a neuron fires plays the gate's role, and there is no up.
//
// Architectures and what they fix (Validate() refuses other combinations):
//   llama  rmsnorm, RoPE, gated FFN act(gate)·up, no biases
//   opt    LayerNorm with bias, learned absolute positions (row p + position_offset, OPT: 2),
//          biases on q/k/v/output, fc1 (ffn_gate_b) and fc2 (ffn_down_b), gate-less FFN
//          act(fc1·x + b1), pre-norm (OPT-350m's post-norm is refused at conversion)
//   falcon LayerNorm with bias, RoPE, gate-less FFN act(up·x) (GELU, exact erf form), no biases,
//          attention and FFN in parallel: x += attn(attn_norm(x)) + ffn(ffn_norm(x)) (Falcon-7B's
//          one LayerNorm is stored twice, as attn_norm and ffn_norm)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "format/metadata.h"
#include "runtime/cpu/rope_frequencies.h"
#include "runtime/model/activation.h"

namespace pinfer {

// The largest count (dim, layers, heads, n_ff, vocabulary, context) a header may declare: 2^24,
// above every released model (256k vocabularies, 10M contexts), and small enough that a product
// of two counts fits in 64 bits.
inline constexpr int64_t kMaxModelCount = int64_t{1} << 24;

enum class NormKind { kRms, kLayer };         // rmsnorm·w, or LayerNorm·w + b
enum class PositionKind { kRope, kLearned };  // RoPE on q and k, or a learned table added to x

struct ModelConfig {
  std::string architecture = "llama";  // "llama", "opt" or "falcon"
  std::string name;
  int64_t dim = 0;
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;  // dim / n_heads for every Llama we know
  int64_t n_ff = 0;
  int64_t vocab_size = 0;
  int64_t context_length = 0;  // the training context
  // Mistral's sliding-window attention: a position attends to the last sliding_window positions.
  // pinfer's attention has no window, so a KV cache longer than it is refused (KvCache::Create);
  // within it both are the same. 0: none. Key llama.sliding_window (absent when 0).
  int64_t sliding_window = 0;
  double rope_theta = 10000.0;
  // Empty (plain RoPE), or head_dim / 2 divisors of RoPE's pair frequencies: Llama 3's
  // rope_scaling and linear scaling, computed by pi-convert, or a GGUF's rope_freqs tensor
  // (runtime/cpu/rope_frequencies.h). Key llama.rope_freq_factors.
  std::vector<float> rope_freq_factors;
  double rms_eps = 1e-5;  // the norm's epsilon (rmsnorm's, or LayerNorm's)
  Activation ffn_act{ActivationKind::kSilu, 0.0f};
  Activation norm_act{ActivationKind::kNone, 0.0f};
  bool tied_embeddings = false;                    // the classifier reuses token_embd
  std::string rope_source_layout = "interleaved";  // or "half" (HF); informational
  bool synthetic = false;  // pi-synth output: for speed only, never for quality claims
  NormKind norm = NormKind::kRms;
  PositionKind positions = PositionKind::kRope;
  int64_t position_offset = 0;  // learned: position p reads row p + offset of position_embd
  bool ffn_gated = true;        // false: no ffn_up, a neuron is act(ffn_gate·x + b)
  bool biases = false;          // attn_{q,k,v,output}_b, ffn_gate_b and ffn_down_b
  bool parallel_attn = false;   // x += attn(attn_norm(x)) + ffn(ffn_norm(x)), both of the input

  // What the CUDA kernels and the llama-only tools (pi-export) compute: rmsnorm, RoPE, a gated
  // FFN, no biases.
  bool llama_shaped() const {
    return norm == NormKind::kRms && positions == PositionKind::kRope && ffn_gated && !biases &&
           !parallel_attn;
  }
  // Rows of position_embd (learned positions only).
  int64_t position_rows() const { return context_length + position_offset; }

  int64_t q_dim() const { return n_heads * head_dim; }
  int64_t kv_dim() const { return n_kv_heads * head_dim; }
  // RoPE's frequencies for the kernels: rope_theta and rope_freq_factors.
  RopeFrequencies Rope() const;

  absl::Status Validate() const;
  void ToMetadata(Metadata& metadata) const;
  static absl::StatusOr<ModelConfig> FromMetadata(const Metadata& metadata);
};

// Metadata keys shared by every artifact.
namespace keys {
inline constexpr char kArchitecture[] = "general.architecture";
inline constexpr char kName[] = "general.name";
inline constexpr char kSynthetic[] = "general.synthetic";
// Content digest (PiFile::ContentDigestHex) of the model an artifact was made for.
inline constexpr char kModelDigest[] = "model.digest";
// Provenance: excluded from content digests.
inline constexpr char kProvenanceTool[] = "provenance.tool";
inline constexpr char kProvenanceToolVersion[] = "provenance.tool_version";
inline constexpr char kProvenanceArguments[] = "provenance.arguments";
inline constexpr char kProvenanceSource[] = "provenance.source";
inline constexpr char kProvenanceSourceDigest[] = "provenance.source_digest";
// Each source file's absolute path, size in bytes and modification time (ns since the epoch) when
// pi-convert read it, parallel to kProvenanceSource: a program that converts a source on the fly
// (runtime/app/model_source.h) recognises an unchanged source by them without reading it.
inline constexpr char kProvenanceSourcePath[] = "provenance.source_path";
inline constexpr char kProvenanceSourceSize[] = "provenance.source_size";
inline constexpr char kProvenanceSourceMtime[] = "provenance.source_mtime_ns";
}  // namespace keys

}  // namespace pinfer
