// libFuzzer target: the model loader (Model::Load: PiFile, ModelConfig, Vocabulary, the weight
// binding) on .pi files whose checksums are valid (pi_custom_mutator.cc), so that every check
// behind the checksum is reached. A model must be rejected with a status or accepted as one the
// runtime can run: a runnable config, token ids exactly as the file records them, a vocabulary
// that tokenizes, and every weight view inside the file with the shape the config implies.
#include <cstddef>
#include <cstdint>

#include "absl/numeric/int128.h"
#include "format/dtype.h"
#include "runtime/cpu/kernels.h"
#include "runtime/model/model.h"
#include "tests/fuzz/fuzz_checks.h"
#include "tests/fuzz/fuzz_file.h"

namespace pinfer::fuzz {
namespace {

void CheckView(const Model& model, const cpu::MatrixView& m, absl::uint128 rows,
               absl::uint128 cols) {
  Require(absl::uint128(static_cast<uint64_t>(m.rows)) == rows &&
              absl::uint128(static_cast<uint64_t>(m.cols)) == cols,
          "a weight view's shape is not what the config implies (overflowed q_dim or kv_dim?)");
  absl::StatusOr<uint64_t> row_bytes = RowBytes(m.dtype, static_cast<uint64_t>(m.cols));
  Require(row_bytes.ok() && *row_bytes == m.row_bytes, "a weight view's row size is wrong");
  const PiFile& f = model.file();
  const uint8_t* base = f.Data(f.tensors().front()).data() - f.tensors().front().offset;
  const uintptr_t at = reinterpret_cast<uintptr_t>(m.data),
                  start = reinterpret_cast<uintptr_t>(base);
  Require(
      at >= start && absl::uint128(at - start) + absl::uint128(m.row_bytes) * rows <= f.file_size(),
      "a weight view lies outside the file");
}

void CheckModel(const Model& model) {
  const ModelConfig& c = model.config();
  RequireRunnableConfig(c);
  const Metadata& m = model.file().metadata();
  if (const std::optional<Vocabulary>& v = model.vocabulary()) {
    Require(static_cast<int64_t>(v->size()) == c.vocab_size, "vocabulary size != vocab_size");
    const std::pair<const char*, int32_t> ids[] = {{"tokenizer.bos_id", v->bos_id},
                                                   {"tokenizer.eos_id", v->eos_id},
                                                   {"tokenizer.unk_id", v->unk_id},
                                                   {"tokenizer.pad_id", v->pad_id}};
    for (const auto& [key, id] : ids) {
      Require(m.GetInt(key).value_or(id) == id, "a token id was truncated to int32");
    }
    ExerciseVocabulary(*v);
  }
  const absl::uint128 dim = static_cast<uint64_t>(c.dim), n_ff = static_cast<uint64_t>(c.n_ff),
                      vocab = static_cast<uint64_t>(c.vocab_size),
                      q_dim = absl::uint128(static_cast<uint64_t>(c.n_heads)) *
                              static_cast<uint64_t>(c.head_dim),
                      kv_dim = absl::uint128(static_cast<uint64_t>(c.n_kv_heads)) *
                               static_cast<uint64_t>(c.head_dim);
  CheckView(model, model.token_embedding(), vocab, dim);
  CheckView(model, model.output(), vocab, dim);
  for (int64_t l = 0; l < model.n_layers(); ++l) {
    const LayerWeights& w = model.layer(l);
    CheckView(model, w.attn_q, q_dim, dim);
    CheckView(model, w.attn_k, kv_dim, dim);
    CheckView(model, w.attn_v, kv_dim, dim);
    CheckView(model, w.attn_output, dim, q_dim);
    CheckView(model, w.ffn_gate, n_ff, dim);
    CheckView(model, w.ffn_up, n_ff, dim);
    CheckView(model, w.ffn_down_t, n_ff, dim);
  }
  (void)model.WeightDTypeSummary();
}

}  // namespace
}  // namespace pinfer::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = pinfer::fuzz::WriteScratchFile("model.pi", {data, size});
  // Without a required tokenizer, files that lack one still reach the weight binding.
  pinfer::ModelLoadOptions options;
  options.require_vocabulary = false;
  absl::StatusOr<std::unique_ptr<pinfer::Model>> model = pinfer::Model::Load(path, options);
  if (!model.ok()) return pinfer::fuzz::Rejected(model.status());
  pinfer::fuzz::CheckModel(**model);
  return 0;
}
