// A streaming, atomic GGUF (version 3) writer, the one GGUF writer of the project: pi-synth hands
// llama.cpp the same weights it writes to model.pi, pi-export writes llama.cpp and PowerInfer GGUFs
// of a model.pi.
//
// Layout (little-endian; strings are u64 length + bytes): "GGUF", u32 version 3, u64 tensor count,
// u64 key/value count; each key/value as (string key, u32 value type, value), arrays as (u32
// element type, u64 count, elements); each tensor as (string name, u32 n_dims, u64 ne[n_dims],
// u32 ggml type, u64 offset from the data start); zero padding to the alignment (32, the default
// of "general.alignment"); then the tensor data, each tensor starting at a multiple of the
// alignment. ne[0] is the contiguous dimension, so a row-major [rows, cols] tensor has
// ne = {cols, rows}.
//
// Like PiWriter, Create() fixes the whole layout from the tensor specs, tensor bytes are streamed
// in (tensors in any order, each tensor's bytes in order), and Commit() makes the file appear under
// its name; a writer destroyed before Commit() leaves nothing behind.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "format/atomic_file.h"
#include "format/dtype.h"
#include "format/pi_writer.h"
#include "runtime/model/model_config.h"
#include "runtime/model/vocabulary.h"

namespace pinfer {

inline constexpr uint32_t kGgufVersion = 3;
inline constexpr uint64_t kGgufAlignment = 32;

// PowerInfer marks a sparse (predictor-carrying) GGUF with "PWRI" instead of "GGUF" (its
// convert.py and ggml.c); the layout is the same.
enum class GgufMagic { kGguf, kPowerInfer };

// ggml_type values of the tensor types the writer writes; their blocks are bit-identical to the
// pinfer dtypes of the same name.
enum class GgmlType : uint32_t { kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ8_0 = 8, kBF16 = 30 };
absl::StatusOr<GgmlType> GgmlTypeFor(DType dtype);

// Key/value metadata, each value serialized as it is set. Keys are unique (a second Set replaces).
class GgufMetadata {
 public:
  void SetUint32(std::string_view key, uint32_t value);
  void SetInt32(std::string_view key, int32_t value);
  void SetUint64(std::string_view key, uint64_t value);
  void SetFloat32(std::string_view key, float value);
  void SetBool(std::string_view key, bool value);
  void SetString(std::string_view key, std::string_view value);
  void SetStringArray(std::string_view key, std::span<const std::string> values);
  void SetFloat32Array(std::string_view key, std::span<const float> values);
  void SetInt32Array(std::string_view key, std::span<const int32_t> values);

  size_t size() const { return entries_.size(); }
  // Appends every entry (key, type, value) in key order.
  void Serialize(std::vector<uint8_t>& out) const;

 private:
  std::map<std::string, std::vector<uint8_t>, std::less<>> entries_;  // key -> type and value
};

// The llama architecture's metadata of a model, the one place that writes it (pi-export, pi-synth
// and the PowerInfer test fixtures): general.architecture and general.name, llama.cpp's llama
// hparams (llama.attention.key_length/value_length only when head_dim × heads ≠ dim) and its
// SentencePiece tokenizer keys (padding id when there is one, the chat template when there is
// one), as tools/convert/gguf_source.cc reads them back. Callers add what is theirs
// (general.description, general.file_type, their own keys).
GgufMetadata LlamaGgufMetadata(const ModelConfig& config, const Vocabulary& vocabulary);

// The tokenizer keys of a vocabulary, as gguf_source.cc reads them back: SentencePiece "llama"
// (tokens, scores, types, add_space_prefix) or byte-level BPE "gpt2" (tokens, types, merges, pre),
// special ids (unknown and padding when there are), add_bos_token, the chat template when there
// is one.
void AddGgufTokenizer(const Vocabulary& vocabulary, GgufMetadata& metadata);

// The hyperparameters every llama.cpp architecture names the same way under its prefix:
// general.architecture and .name, ARCH.context_length, .embedding_length, .block_count,
// .feed_forward_length, .attention.head_count and .attention.head_count_kv.
void AddGgufCommonHparams(const std::string& arch, const ModelConfig& config,
                          GgufMetadata& metadata);

class GgufWriter {
 public:
  // `tensors` use pinfer's row-major shapes and dtypes; they are written as ne = reversed shape.
  static absl::StatusOr<std::unique_ptr<GgufWriter>> Create(const std::string& path,
                                                            const GgufMetadata& metadata,
                                                            std::vector<TensorSpec> tensors,
                                                            GgufMagic magic = GgufMagic::kGguf);
  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;

  // Appends the next bytes of a tensor (GGML's block layout, same as pinfer's dtypes).
  absl::Status Append(std::string_view name, std::span<const uint8_t> bytes);
  // Fails unless every tensor is complete; then makes the file appear under its path.
  absl::Status Commit();

  const std::string& path() const { return file_->path(); }
  uint64_t total_bytes() const { return file_size_; }

 private:
  struct Slot {
    TensorSpec spec;
    uint64_t offset = 0;  // absolute
    uint64_t size = 0;
    uint64_t written = 0;
  };
  GgufWriter() = default;

  std::unique_ptr<AtomicFile> file_;
  std::vector<Slot> slots_;
  absl::flat_hash_map<std::string, size_t> by_name_;
  uint64_t file_size_ = 0;
};

// The one conversion of a .pi tensor's stored bytes into GGUF tensor bytes: every tensor that
// pi-export copies as stored goes through these two. GgufDTypeFor is the dtype the GGUF tensor has
// (its spec's dtype); AppendPiTensor appends the tensor's bytes in that dtype's GGML layout. Every
// dtype but one is bit-identical to GGML's; q4_0x16 (a within-row permutation of q4_0 blocks,
// format/README.md) becomes GGUF q4_0 here and nowhere else, row by row (`cols`: the tensor's
// row length).
absl::StatusOr<DType> GgufDTypeFor(DType pi_dtype);
absl::Status AppendPiTensor(GgufWriter& writer, std::string_view gguf_name, DType pi_dtype,
                            int64_t cols, std::span<const uint8_t> pi_bytes);

}  // namespace pinfer
