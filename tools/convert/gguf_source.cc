#include "tools/convert/gguf_source.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "format/mapped_file.h"
#include "format/strings.h"
#include "runtime/model/tensor_names.h"
#include "tools/convert/gguf_file.h"
#include "tools/convert/gguf_layouts.h"
#include "tools/convert/model_tensors.h"
#include "tools/convert/tensor_source.h"

namespace pinfer {
namespace {

constexpr uint64_t kNoToken = 0xFFFFFFFFu;  // GGUF writes u32 -1 for "no such token"

struct Reader {
  const GgufFile& gguf;
  const std::string& path;
  std::string arch;

  std::string Key(std::string_view suffix) const { return absl::StrCat(arch, ".", Sv(suffix)); }

  absl::StatusOr<int64_t> Count(std::string_view suffix) const {
    absl::StatusOr<uint64_t> v = gguf.GetUint(Key(suffix));
    if (!v.ok()) return v.status();
    if (*v == 0 || *v > static_cast<uint64_t>(kMaxModelCount)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": metadata '", Key(suffix), "' has an implausible value ", *v));
    }
    return static_cast<int64_t>(*v);
  }
  absl::StatusOr<int64_t> CountOr(std::string_view suffix, int64_t fallback) const {
    return gguf.Has(Key(suffix)) ? Count(suffix) : absl::StatusOr<int64_t>(fallback);
  }
};

// llama.cpp's rope_freqs tensor (Llama 3.1+): f32 [head_dim / 2] divisors of RoPE's frequencies,
// multiplied into those of a linear scaling.
absl::Status ReadRopeFreqs(const GgufFile& gguf, const GgufTensorInfo& info,
                           const std::string& what, ModelConfig& c) {
  const uint64_t pairs = static_cast<uint64_t>(c.head_dim / 2);
  if (info.ggml_type != 0 || info.ne.size() != 1 || info.ne[0] != pairs) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " must be f32 of ", pairs, " values (head size ", c.head_dim, " / 2)"));
  }
  if (pairs > static_cast<uint64_t>(kMaxRopePairs)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": RoPE scaling with head size ", c.head_dim, " is not supported"));
  }
  const std::span<const uint8_t> data = gguf.TensorData(info);
  if (c.rope_freq_factors.empty()) c.rope_freq_factors.assign(pairs, 1.0f);
  for (uint64_t i = 0; i < pairs; ++i) {
    float f = 0;
    std::memcpy(&f, data.data() + 4 * i, sizeof(f));
    if (!(f > 0) || !std::isfinite(f)) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": value ", i, " is ", f, " (RoPE divisors must be positive)"));
    }
    c.rope_freq_factors[i] *= f;
  }
  return absl::OkStatus();
}

// The structure each GGUF architecture fixes (model_config.h).
void SetArchitecture(const std::string& arch, ModelConfig& c) {
  if (arch == "falcon") {
    c.architecture = "falcon";
    c.norm = NormKind::kLayer;
    c.ffn_gated = false;
    c.parallel_attn = true;
    c.rope_source_layout = "half";  // llama.cpp rotates falcon's q/k NEOX-style, as HF does
  } else if (arch == "opt") {
    c.architecture = "opt";
    c.norm = NormKind::kLayer;
    c.positions = PositionKind::kLearned;
    c.position_offset = 2;  // PowerInfer's llama.cpp adds 2 to every position, as HF's OPT does
    c.ffn_gated = false;
    c.biases = true;
    c.rope_source_layout = "none";
  } else {
    c.architecture = "llama";  // and PowerInfer's bamboo: a llama with a drelu FFN
    c.rope_source_layout = "interleaved";
  }
}

absl::StatusOr<ModelConfig> ReadHparams(const Reader& r) {
  ModelConfig c;
  SetArchitecture(r.arch, c);
  const std::string& path = r.path;
  auto dim = r.Count("embedding_length");
  if (!dim.ok()) return dim.status();
  auto layers = r.Count("block_count");
  if (!layers.ok()) return layers.status();
  auto ff = r.Count("feed_forward_length");
  if (!ff.ok()) return ff.status();
  auto heads = r.Count("attention.head_count");
  if (!heads.ok()) return heads.status();
  auto kv_heads = r.CountOr("attention.head_count_kv", *heads);
  if (!kv_heads.ok()) return kv_heads.status();
  if (*dim % *heads != 0 && !r.gguf.Has(r.Key("attention.key_length"))) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": inconsistent shapes: embedding_length ",
                                                   *dim, " is not a multiple of head_count ",
                                                   *heads));
  }
  auto head_dim = r.CountOr("attention.key_length", *dim / *heads);
  if (!head_dim.ok()) return head_dim.status();
  auto value_dim = r.CountOr("attention.value_length", *head_dim);
  if (!value_dim.ok()) return value_dim.status();
  if (*value_dim != *head_dim) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": attention.value_length ", *value_dim,
                                                   " differs from key_length ", *head_dim,
                                                   " (not supported)"));
  }
  auto rope_dims = r.CountOr("rope.dimension_count", *head_dim);
  if (!rope_dims.ok()) return rope_dims.status();
  if (*rope_dims != *head_dim) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": partial RoPE (rope.dimension_count ",
                                                   *rope_dims, " of head size ", *head_dim,
                                                   ") is not supported"));
  }
  auto context = r.CountOr("context_length", 2048);
  if (!context.ok()) return context.status();
  c.dim = *dim;
  c.n_layers = *layers;
  c.n_ff = *ff;
  c.n_heads = *heads;
  c.n_kv_heads = *kv_heads;
  c.head_dim = *head_dim;
  c.context_length = *context;
  if (r.gguf.Has(r.Key("rope.freq_base"))) {
    auto theta = r.gguf.GetFloat(r.Key("rope.freq_base"));
    if (!theta.ok()) return theta.status();
    c.rope_theta = *theta;
  }
  // The norm's epsilon: rmsnorm's for llama, LayerNorm's for falcon (required by llama.cpp);
  // PowerInfer's OPT files have none (its llama.cpp leaves it 0), so OPT's own 1e-5
  // (nn.LayerNorm's) applies.
  const std::string eps_key = r.Key(c.norm == NormKind::kRms ? "attention.layer_norm_rms_epsilon"
                                                             : "attention.layer_norm_epsilon");
  if (c.architecture != "opt" || r.gguf.Has(eps_key)) {
    auto eps = r.gguf.GetFloat(eps_key);
    if (!eps.ok()) return eps.status();
    c.rms_eps = *eps;
  }
  // RoPE scaling as llama.cpp writes it: rope.scaling.type "linear" with rope.scaling.factor
  // (every frequency divided by it), and/or Llama 3's per-pair divisors in the rope_freqs tensor
  // (ReadRopeFreqs); the two compose as llama.cpp composes them.
  std::string scaling = "none";
  if (r.gguf.Has(r.Key("rope.scaling.type"))) {
    auto type = r.gguf.GetString(r.Key("rope.scaling.type"));
    if (!type.ok()) return type.status();
    scaling = *type;
    if (scaling != "none" && scaling != "linear") {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": RoPE scaling '", scaling, "' is not supported (metadata '",
                       r.Key("rope.scaling.type"), "'; supported: none, linear)"));
    }
  }
  if (r.gguf.Has(r.Key("rope.scaling.factor"))) {
    auto factor = r.gguf.GetFloat(r.Key("rope.scaling.factor"));
    if (!factor.ok()) return factor.status();
    if (scaling == "linear") {
      if (!(*factor > 0) || !std::isfinite(*factor)) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ": metadata '", r.Key("rope.scaling.factor"), "' must be positive, got ",
            *factor));
      }
      if (c.head_dim / 2 > kMaxRopePairs) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ": RoPE scaling with head size ", c.head_dim, " is not supported"));
      }
      c.rope_freq_factors.assign(static_cast<size_t>(c.head_dim / 2), static_cast<float>(*factor));
    } else if (*factor != 0.0 && *factor != 1.0) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": RoPE scaling factor ", *factor, " (metadata '", r.Key("rope.scaling.factor"),
          "') without rope.scaling.type linear is not supported"));
    }
  } else if (scaling == "linear") {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": metadata '", r.Key("rope.scaling.type"), "' is linear but '",
        r.Key("rope.scaling.factor"), "' is missing"));
  }
  c.name = r.gguf.GetString("general.name").value_or(std::filesystem::path(path).stem().string());
  return c;
}

// OPT's learned positions: position_embd holds context + 2 rows (PowerInfer's converter writes
// context_length 2050, counting the two offset rows); our context_length excludes them.
absl::Status ReadLearnedPositions(const Reader& r, ModelConfig& c) {
  const GgufTensorInfo* table = r.gguf.FindTensor("position_embd.weight");
  if (table == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        r.path, ": tensor 'position_embd.weight' is missing (an ", r.arch, " GGUF has it)"));
  }
  const uint64_t rows = table->ne.size() == 2 ? table->ne[1] : 0;
  if (rows <= static_cast<uint64_t>(c.position_offset) ||
      rows > static_cast<uint64_t>(kMaxModelCount)) {
    return absl::InvalidArgumentError(absl::StrCat(
        r.path, ": tensor 'position_embd.weight' has shape ", ShapeText(table->Shape()),
        ", expected [", c.position_offset, " + context, dim]"));
  }
  if (r.gguf.Has(r.Key("context_length"))) {
    absl::StatusOr<uint64_t> declared = r.gguf.GetUint(r.Key("context_length"));
    if (!declared.ok()) return declared.status();
    if (*declared != rows) {
      return absl::InvalidArgumentError(
          absl::StrCat(r.path, ": metadata '", r.Key("context_length"), "' is ", *declared,
                       " but position_embd.weight has ", rows, " rows (PowerInfer counts the ",
                       c.position_offset, " offset rows in it)"));
    }
  }
  c.context_length = static_cast<int64_t>(rows) - c.position_offset;
  return absl::OkStatus();
}

// Falcon's attn_qkv as llama.cpp stores it: all query heads, then the key heads, then the value
// heads (rows q_dim + 2 kv_dim), q and k with half-split RoPE pairs, which our rows interleave.
absl::StatusOr<std::vector<SourceTensor>> SplitFusedQkv(const ModelConfig& c,
                                                        const StoredMatrix& fused, int layer,
                                                        const std::string& what) {
  const int64_t q = c.q_dim(), kv = c.kv_dim();
  if (fused.rows != q + 2 * kv || fused.cols != c.dim) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": inconsistent shape [", fused.rows, ", ",
                                                   fused.cols, "]: ", c.n_heads, " query and ",
                                                   c.n_kv_heads, " key/value heads of ", c.head_dim,
                                                   " need [", q + 2 * kv, ", ", c.dim, "]"));
  }
  std::vector<int64_t> q_rows = HalfSplitToInterleavedRows(c.n_heads, c.head_dim);
  std::vector<int64_t> k_rows = HalfSplitToInterleavedRows(c.n_kv_heads, c.head_dim);
  for (int64_t& r : k_rows) r += q;
  std::vector<int64_t> v_rows;
  for (int64_t r = 0; r < kv; ++r) v_rows.push_back(q + kv + r);
  std::vector<SourceTensor> out;
  for (const auto& [name, rows] : {std::pair{tensor_names::AttnQ(layer), q_rows},
                                   std::pair{tensor_names::AttnK(layer), k_rows},
                                   std::pair{tensor_names::AttnV(layer), v_rows}}) {
    const uint64_t count = rows.size();
    SourceTensor piece = PermutedRowsTensor(name, fused, rows);
    piece.shape[0] = count;  // a piece of the fused rows
    out.push_back(std::move(piece));
  }
  return out;
}

absl::StatusOr<Vocabulary> ReadVocabulary(const GgufFile& gguf, const std::string& path,
                                          std::vector<std::string>& notes) {
  Vocabulary v;
  if (!gguf.Has("tokenizer.ggml.model")) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": the GGUF has no tokenizer (tokenizer.ggml.model is missing)"));
  }
  auto model = gguf.GetString("tokenizer.ggml.model");
  if (!model.ok()) return model.status();
  if (*model != "llama" && *model != "gpt2") {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": tokenizer.ggml.model '", *model,
        "' is not supported (SentencePiece 'llama' and byte-level BPE 'gpt2' vocabularies are)"));
  }
  v.model = *model;
  auto tokens = gguf.GetStringArray("tokenizer.ggml.tokens");
  if (!tokens.ok()) return tokens.status();
  v.pieces = *std::move(tokens);
  const size_t n = v.pieces.size();
  if (gguf.Has("tokenizer.ggml.scores")) {
    auto scores = gguf.GetFloatArray("tokenizer.ggml.scores");
    if (!scores.ok()) return scores.status();
    if (scores->size() != n) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": ", scores->size(), " tokenizer scores for ", n, " tokens"));
    }
    v.scores.assign(scores->begin(), scores->end());
  } else {
    v.scores.assign(n, 0.0f);
    // Byte-level BPE ranks merges, not pieces: it has no scores to miss.
    if (!v.byte_level()) {
      notes.push_back("the GGUF tokenizer has no scores: all merges rank equally");
    }
  }
  if (gguf.Has("tokenizer.ggml.token_type")) {
    auto types = gguf.GetIntArray("tokenizer.ggml.token_type");
    if (!types.ok()) return types.status();
    if (types->size() != n) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": ", types->size(), " token types for ", n, " tokens"));
    }
    for (int64_t t : *types) {
      if (t < 1 || t > 6) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": unknown token type ", t));
      }
      v.types.push_back(static_cast<int32_t>(t));
    }
  } else {
    v.types.assign(n, static_cast<int32_t>(TokenType::kNormal));
  }
  if (v.byte_level()) {
    // llama.cpp's defaults for a BPE vocabulary: bos = eos = 11, no <unk>, no BOS added, no space
    // prefix (the file's keys below may say otherwise, except for the space prefix).
    v.bos_id = v.eos_id = 11;
    v.unk_id = -1;
    v.add_bos = false;
    if (!gguf.Has("tokenizer.ggml.merges")) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": the gpt2 tokenizer has no tokenizer.ggml.merges"));
    }
    auto merges = gguf.GetStringArray("tokenizer.ggml.merges");
    if (!merges.ok()) return merges.status();
    v.merges = *std::move(merges);
    if (gguf.Has("tokenizer.ggml.pre")) {
      auto pre = gguf.GetString("tokenizer.ggml.pre");
      if (!pre.ok()) return pre.status();
      v.pre_tokenizer = *pre;
    } else {
      notes.push_back(
          "the GGUF names no tokenizer.ggml.pre: using llama.cpp's 'default' pre-tokenizer");
    }
    const BpePreTokenizerFamily* family = FindBpePreTokenizer(v.pre_tokenizer);
    if (family == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tokenizer.ggml.pre '", v.pre_tokenizer,
                       "' is not a pre-tokenizer pinfer knows (gpt-2, falcon, llama-bpe, qwen2, "
                       "starcoder, ... as llama.cpp names them)"));
    }
    v.add_bos = family->add_bos;
    if (absl::Status s = v.ValidateMerges(); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tokenizer.ggml.merges: ", s.message()));
    }
  }
  const bool byte_level = v.byte_level();
  struct Id {
    const char* key;
    int32_t* field;
    bool optional;
  } ids[] = {{"tokenizer.ggml.bos_token_id", &v.bos_id, false},
             {"tokenizer.ggml.eos_token_id", &v.eos_id, false},
             {"tokenizer.ggml.unknown_token_id", &v.unk_id, byte_level},
             {"tokenizer.ggml.padding_token_id", &v.pad_id, true}};
  for (const Id& id : ids) {
    if (!gguf.Has(id.key)) {
      if (id.optional) *id.field = -1;
      continue;
    }
    auto value = gguf.GetUint(id.key);
    if (!value.ok()) return value.status();
    if (*value == kNoToken && id.optional) {
      *id.field = -1;
    } else if (*value >= n) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", id.key, " ", *value,
                                                     " is outside the ", n, "-token vocabulary"));
    } else {
      *id.field = static_cast<int32_t>(*value);
    }
  }
  for (auto [key, field] : {std::pair{"tokenizer.ggml.add_bos_token", &v.add_bos},
                            std::pair{"tokenizer.ggml.add_space_prefix", &v.add_space_prefix}}) {
    if (!gguf.Has(key)) continue;
    auto value = gguf.GetBool(key);
    if (!value.ok()) return value.status();
    *field = *value;
  }
  if (byte_level) {
    v.add_space_prefix = false;  // llama.cpp's BPE tokenizer never adds one
    if (v.bos_id >= static_cast<int32_t>(n) || v.eos_id >= static_cast<int32_t>(n)) {
      return absl::InvalidArgumentError(absl::StrCat(
          path,
          ": the gpt2 tokenizer names no tokenizer.ggml.bos_token_id/eos_token_id and has "
          "no token 11 (llama.cpp's default)"));
    }
  }
  if (gguf.Has("tokenizer.chat_template")) {
    auto chat = gguf.GetString("tokenizer.chat_template");
    if (!chat.ok()) return chat.status();
    v.chat_template = *chat;
  }
  return v;
}

}  // namespace

absl::StatusOr<Vocabulary> ReadGgufVocabulary(const std::string& path,
                                              std::vector<std::string>& notes) {
  absl::StatusOr<std::unique_ptr<MappedFile>> file = MappedFile::Open(path);
  if (!file.ok()) return file.status();
  absl::StatusOr<GgufFile> gguf = GgufFile::Parse((*file)->bytes(), path);
  if (!gguf.ok()) return gguf.status();
  absl::StatusOr<Vocabulary> vocabulary = ReadVocabulary(*gguf, path, notes);
  if (!vocabulary.ok()) return vocabulary.status();
  if (absl::Status s = vocabulary->Validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", s.message()));
  }
  return vocabulary;
}

absl::StatusOr<SourceModel> ReadGguf(const std::string& path, const ActivationFlags& flags) {
  absl::StatusOr<std::unique_ptr<MappedFile>> opened = MappedFile::Open(path);
  if (!opened.ok()) return opened.status();
  std::shared_ptr<MappedFile> file = *std::move(opened);
  absl::StatusOr<GgufFile> parsed = GgufFile::Parse(file->bytes(), path);
  if (!parsed.ok()) return parsed.status();
  auto gguf = std::make_shared<GgufFile>(*std::move(parsed));

  SourceModel model;
  model.source_files = {path};
  model.keep_alive = {file, gguf};
  auto arch = gguf->GetString("general.architecture");
  if (!arch.ok()) return arch.status();
  if (!IsKnownGgufArchitecture(*arch)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": unknown architecture '", *arch,
                                                   "' (supported: ", kKnownGgufArchitectures, ")"));
  }
  Reader reader{*gguf, path, *arch};
  absl::StatusOr<ModelConfig> config = ReadHparams(reader);
  if (!config.ok()) return config.status();
  model.config = *std::move(config);
  ModelConfig& c = model.config;
  model.format =
      absl::StrCat("GGUF v", gguf->version(), gguf->powerinfer_magic() ? " (PowerInfer)" : "");
  if (c.positions == PositionKind::kLearned) {
    if (absl::Status s = ReadLearnedPositions(reader, c); !s.ok()) return s;
  }

  absl::StatusOr<Vocabulary> vocabulary = ReadVocabulary(*gguf, path, model.notes);
  if (!vocabulary.ok()) return vocabulary.status();
  model.vocabulary = *std::move(vocabulary);
  c.vocab_size = static_cast<int64_t>(model.vocabulary.size());

  std::map<std::string, SourceTensor> tensors;
  std::map<std::string, std::string> gguf_name_of;  // our name -> the GGUF tensor it came from
  std::set<std::string> present;                    // GGUF names
  int predictor_tensors = 0;
  bool has_down_t = false;
  for (const GgufTensorInfo& info : gguf->tensors()) {
    const std::string what = absl::StrCat(path, ": tensor '", info.name, "'");
    const std::optional<GgufMapping> mapped = MapGgufTensor(*arch, info.name, c.n_layers);
    if (!mapped) {
      return absl::InvalidArgumentError(absl::StrCat(what, " is not part of a ", c.n_layers,
                                                     "-layer ", *arch,
                                                     " model (unsupported variant?)"));
    }
    present.insert(info.name);
    if (mapped->role == GgufRole::kRopeFreqs) {
      if (absl::Status s = ReadRopeFreqs(*gguf, info, what, c); !s.ok()) return s;
      continue;  // carried as ModelConfig::rope_freq_factors, not as a tensor
    }
    if (mapped->role == GgufRole::kPredictor) {
      ++predictor_tensors;
      continue;
    }
    if (mapped->role == GgufRole::kIgnored) continue;
    if (info.name.ends_with("ffn_down_t.weight")) has_down_t = true;
    const GgmlTypeInfo* type = FindGgmlType(info.ggml_type);  // known: Parse() checked
    if (!type->dtype) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " has type ", Sv(type->name),
          ", which pinfer cannot import (supported: F32, F16, BF16, Q8_0, Q4_0; re-quantize an "
          "F16/F32 GGUF with llama-quantize, or convert the HF checkpoint)"));
    }
    const std::vector<uint64_t> shape = info.Shape();
    if (shape.size() > 2) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " has ", shape.size(), " dimensions, expected 1 or 2"));
    }
    const int64_t rows = shape.size() == 2 ? static_cast<int64_t>(shape[0]) : 1;
    const int64_t cols = static_cast<int64_t>(shape.back());
    absl::StatusOr<StoredMatrix> matrix =
        MakeStoredMatrix(gguf->TensorData(info), *type->dtype, rows, cols, what);
    if (!matrix.ok()) return matrix.status();
    std::vector<SourceTensor> made;
    switch (mapped->role) {
      case GgufRole::kTransposed:
        made.push_back(TransposedTensor(mapped->our_name, rows, cols, *type->dtype,
                                        StoredMatrixDecoder(*matrix)));
        break;
      case GgufRole::kFusedQkv: {
        absl::StatusOr<std::vector<SourceTensor>> pieces =
            SplitFusedQkv(c, *matrix, mapped->layer, what);
        if (!pieces.ok()) return pieces.status();
        made = *std::move(pieces);
        break;
      }
      default:
        made.push_back(DirectTensor(mapped->our_name, *matrix, /*vector=*/shape.size() == 1));
    }
    for (SourceTensor& tensor : made) {
      const std::string our_name = tensor.name;
      if (!tensors.emplace(our_name, std::move(tensor)).second) {
        return absl::InvalidArgumentError(absl::StrCat(
            what, ": the file also holds '", gguf_name_of[our_name],
            "', which is the same tensor of the model (ffn_down and ffn_down_t of a layer?)"));
      }
      gguf_name_of[our_name] = info.name;
    }
  }
  c.tied_embeddings = tensors.count(tensor_names::kOutput) == 0;
  // Falcon-7B's one LayerNorm (attn_norm, read as ffn_norm) is also the attention's.
  if (c.architecture == "falcon") {
    for (int l = 0; l < c.n_layers; ++l) {
      for (const bool bias : {false, true}) {
        const std::string ffn = bias ? tensor_names::FfnNormBias(l) : tensor_names::FfnNorm(l);
        const std::string attn = bias ? tensor_names::AttnNormBias(l) : tensor_names::AttnNorm(l);
        auto it = tensors.find(ffn);
        if (it == tensors.end() || tensors.count(attn) != 0) continue;
        SourceTensor copy = it->second;
        copy.name = attn;
        tensors.emplace(attn, std::move(copy));
        gguf_name_of[attn] = gguf_name_of[ffn];
      }
    }
  }

  // The activation, where the file says it (see the header comment).
  std::optional<Activation> declared;
  std::string declared_by;
  const bool powerinfer_sparse = gguf->powerinfer_magic() || has_down_t || predictor_tensors > 0 ||
                                 gguf->Has("powerinfer.sparse_threshold");
  if (*arch == "bamboo") {
    declared = Activation{ActivationKind::kDRelu, 0.0f};
    declared_by = "PowerInfer's bamboo architecture";
  } else if (*arch == "opt") {
    declared = Activation{ActivationKind::kRelu, 0.0f};
    declared_by = "OPT's architecture (fc1 -> relu -> fc2)";
  } else if (powerinfer_sparse) {
    declared = Activation{ActivationKind::kRelu, 0.0f};
    declared_by = absl::StrCat("a PowerInfer sparse ", *arch,
                               *arch == "falcon" ? " GGUF (ReluFalcon)" : " GGUF");
  } else if (*arch == "falcon") {
    declared = Activation{ActivationKind::kGeluErf, 0.0f};
    declared_by = "llama.cpp's falcon architecture (Falcon's exact GELU)";
  }
  c.ffn_act = ChooseFfnActivation(flags, declared, declared_by, model.notes);
  c.norm_act = ChooseNormActivation(flags);
  if (!declared && !flags.ffn_act) {
    model.notes.push_back(
        "the GGUF does not record the FFN activation: assuming silu (use --ffn-act for ReLU "
        "models)");
  }
  if (predictor_tensors > 0) {
    if (c.norm == NormKind::kRms) {
      model.notes.push_back(absl::StrCat(
          "ignored ", predictor_tensors,
          " PowerInfer predictor tensors (fc1/fc2) in the model; import them as its predictor, "
          "without training: pi-train-predictor -m MODEL.pi --import ",
          path));
    } else {
      model.notes.push_back(absl::StrCat(
          "ignored ", predictor_tensors, " PowerInfer predictor tensors (fc1/fc2): PowerInfer's ",
          *arch,
          " predictor reads the residual before the LayerNorm, pinfer's the normalized input, so "
          "they cannot be imported (train one with pi-profile --samples and "
          "pi-train-predictor)"));
    }
  }

  // Everything the architecture needs, named as the file names it, before our own checks.
  if (absl::Status s = CheckCountsAgainstTensors(c, tensors, path); !s.ok()) return s;
  for (const std::string& name : RequiredGgufTensors(*arch, c.n_layers)) {
    if (present.count(name) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor '", name, "' is missing (a ", *arch, " GGUF has it)"));
    }
  }
  for (const ExpectedTensor& e : ExpectedTensors(c)) {
    auto it = tensors.find(e.name);
    if (it == tensors.end() || it->second.shape == e.shape) continue;
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": inconsistent shape: tensor '", gguf_name_of[e.name], "' is ",
                     ShapeText(it->second.shape), " as our ", e.name, ", but the hparams (dim ",
                     c.dim, ", n_ff ", c.n_ff, ", heads ", c.n_heads, "/", c.n_kv_heads, ", vocab ",
                     c.vocab_size, ") need ", ShapeText(e.shape)));
  }
  absl::StatusOr<std::vector<SourceTensor>> assembled =
      AssembleTensors(c, std::move(tensors), path);
  if (!assembled.ok()) return assembled.status();
  model.tensors = *std::move(assembled);
  return model;
}

}  // namespace pinfer
