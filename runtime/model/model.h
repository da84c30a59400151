// A model opened for inference: model.pi mapped read-only (zero copies), its hparams and
// tokenizer, and a typed view of every weight tensor of tensor_names.h, each checked against the
// shape the hparams imply. A Model is immutable once loaded, so any number of sessions (pi-server)
// can run over one mapping.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "format/pi_file.h"
#include "runtime/cpu/kernels.h"
#include "runtime/model/model_config.h"
#include "runtime/model/vocabulary.h"

namespace pinfer {

// The pointers of the optional tensors (model_config.h: per architecture) are null, and ffn_up
// an empty view (rows 0, row_bytes 0), when the architecture has none.
struct LayerWeights {
  const float* attn_norm = nullptr;      // [dim]
  const float* attn_norm_b = nullptr;    // [dim]      LayerNorm only
  cpu::MatrixView attn_q;                // [q_dim, dim]
  cpu::MatrixView attn_k;                // [kv_dim, dim]
  cpu::MatrixView attn_v;                // [kv_dim, dim]
  cpu::MatrixView attn_output;           // [dim, q_dim]
  const float* attn_q_b = nullptr;       // [q_dim]    biases only
  const float* attn_k_b = nullptr;       // [kv_dim]
  const float* attn_v_b = nullptr;       // [kv_dim]
  const float* attn_output_b = nullptr;  // [dim]
  const float* ffn_norm = nullptr;       // [dim]
  const float* ffn_norm_b = nullptr;     // [dim]      LayerNorm only
  cpu::MatrixView ffn_gate;              // [n_ff, dim]  (fc1 of a gate-less FFN)
  cpu::MatrixView ffn_up;                // [n_ff, dim]  empty for a gate-less FFN
  cpu::MatrixView ffn_down_t;            // [n_ff, dim]: row i is neuron i's down column
  const float* ffn_gate_b = nullptr;     // [n_ff]     biases only: entry i is neuron i's
  const float* ffn_down_b = nullptr;     // [dim]      biases only: added once per token

  uint64_t AttentionBytes() const;  // q, k, v and output matrices
  uint64_t FfnBytes() const;        // gate, up and down
};

struct ModelLoadOptions {
  // Read the whole file into the page cache at open (MAP_POPULATE), so that the first tokens are
  // not timed against disk reads.
  bool populate = false;
  // Fail when the model has no tokenizer. Programs that only run token ids can turn it off.
  bool require_vocabulary = true;
};

class Model {
 public:
  // Every error names the file; shape errors also name the tensor, the expected and the actual
  // shape.
  static absl::StatusOr<std::unique_ptr<Model>> Load(const std::string& path,
                                                     const ModelLoadOptions& options = {});
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const PiFile& file() const { return *file_; }
  const std::string& path() const { return file_->path(); }
  const ModelConfig& config() const { return config_; }
  // Absent only when loaded with require_vocabulary = false from a model without one.
  const std::optional<Vocabulary>& vocabulary() const { return vocabulary_; }

  const cpu::MatrixView& token_embedding() const { return token_embedding_; }  // [vocab, dim]
  const float* output_norm() const { return output_norm_; }                    // [dim]
  const float* output_norm_bias() const { return output_norm_b_; }  // [dim] or null (rmsnorm)
  // [position_rows, dim] learned positions; rows 0 when the model uses RoPE.
  const cpu::MatrixView& position_embedding() const { return position_embedding_; }
  // The classifier [vocab, dim]: token_embd itself when the embeddings are tied.
  const cpu::MatrixView& output() const { return output_; }
  const LayerWeights& layer(int64_t l) const { return layers_[static_cast<size_t>(l)]; }
  int64_t n_layers() const { return config_.n_layers; }

  // Bytes of every weight tensor in the file (what a fully dense token would read at most).
  uint64_t WeightBytes() const { return weight_bytes_; }
  // "q4_0" when every matrix has that dtype, else "mixed (q4_0, f32)".
  std::string WeightDTypeSummary() const;

 private:
  Model() = default;
  absl::Status Bind();

  std::unique_ptr<PiFile> file_;
  ModelConfig config_;
  std::optional<Vocabulary> vocabulary_;
  cpu::MatrixView token_embedding_;
  const float* output_norm_ = nullptr;
  const float* output_norm_b_ = nullptr;
  cpu::MatrixView position_embedding_;
  cpu::MatrixView output_;
  std::vector<LayerWeights> layers_;
  uint64_t weight_bytes_ = 0;
};

}  // namespace pinfer
