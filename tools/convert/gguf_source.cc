#include "tools/convert/gguf_source.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "format/mapped_file.h"
#include "format/strings.h"
#include "runtime/model/tensor_names.h"
#include "tools/convert/gguf_file.h"
#include "tools/convert/model_tensors.h"
#include "tools/convert/tensor_source.h"

namespace pinfer {
namespace {

constexpr uint64_t kNoToken = 0xFFFFFFFFu;  // GGUF writes u32 -1 for "no such token"

// Per-layer GGUF tensor suffixes and what we make of them.
enum class LayerRole { kDirect, kTransposed, kIgnoredPredictor, kIgnored };
struct LayerTensor {
  const char* gguf_suffix;
  const char* our_suffix;
  LayerRole role;
};
constexpr LayerTensor kLayerTensors[] = {
    {"attn_norm", "attn_norm", LayerRole::kDirect},
    {"attn_q", "attn_q", LayerRole::kDirect},
    {"attn_k", "attn_k", LayerRole::kDirect},
    {"attn_v", "attn_v", LayerRole::kDirect},
    {"attn_output", "attn_output", LayerRole::kDirect},
    {"ffn_norm", "ffn_norm", LayerRole::kDirect},
    {"ffn_gate", "ffn_gate", LayerRole::kDirect},
    {"ffn_up", "ffn_up", LayerRole::kDirect},
    {"ffn_down", "ffn_down_t", LayerRole::kTransposed},
    {"ffn_down_t", "ffn_down_t", LayerRole::kDirect},  // PowerInfer: already neuron-major
    {"fc1", nullptr, LayerRole::kIgnoredPredictor},    // PowerInfer's predictor MLP
    {"fc2", nullptr, LayerRole::kIgnoredPredictor},
    {"attn_rot_embd", nullptr, LayerRole::kIgnored},  // precomputed RoPE tables
};

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

absl::StatusOr<ModelConfig> ReadHparams(const Reader& r) {
  ModelConfig c;
  c.architecture = "llama";
  c.rope_source_layout = "interleaved";
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
  auto eps = r.gguf.GetFloat(r.Key("attention.layer_norm_rms_epsilon"));
  if (!eps.ok()) return eps.status();
  c.rms_eps = *eps;
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
  if (*arch != "llama" && *arch != "bamboo") {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": unknown architecture '", *arch, "' (supported: llama, and PowerInfer's bamboo)"));
  }
  Reader reader{*gguf, path, *arch};
  absl::StatusOr<ModelConfig> config = ReadHparams(reader);
  if (!config.ok()) return config.status();
  model.config = *std::move(config);
  ModelConfig& c = model.config;
  model.format =
      absl::StrCat("GGUF v", gguf->version(), gguf->powerinfer_magic() ? " (PowerInfer)" : "");

  absl::StatusOr<Vocabulary> vocabulary = ReadVocabulary(*gguf, path, model.notes);
  if (!vocabulary.ok()) return vocabulary.status();
  model.vocabulary = *std::move(vocabulary);
  c.vocab_size = static_cast<int64_t>(model.vocabulary.size());

  std::map<std::string, SourceTensor> tensors;
  int ignored_predictor = 0;
  bool has_down_t = false;
  for (const GgufTensorInfo& info : gguf->tensors()) {
    const std::string what = absl::StrCat(path, ": tensor '", info.name, "'");
    std::string our_name;
    LayerRole role = LayerRole::kDirect;
    if (info.name == "token_embd.weight") {
      our_name = tensor_names::kTokenEmbedding;
    } else if (info.name == "output_norm.weight") {
      our_name = tensor_names::kOutputNorm;
    } else if (info.name == "output.weight") {
      our_name = tensor_names::kOutput;
    } else if (info.name == "rope_freqs.weight") {
      if (absl::Status s = ReadRopeFreqs(*gguf, info, what, c); !s.ok()) return s;
      continue;  // carried as ModelConfig::rope_freq_factors, not as a tensor
    } else {
      std::vector<std::string> parts = absl::StrSplit(info.name, '.');
      int layer = -1;
      const LayerTensor* match = nullptr;
      if (parts.size() == 4 && parts[0] == "blk" && parts[3] == "weight" &&
          absl::SimpleAtoi(parts[1], &layer) && layer >= 0 && layer < c.n_layers) {
        for (const LayerTensor& lt : kLayerTensors) {
          if (parts[2] == lt.gguf_suffix) match = &lt;
        }
      }
      if (match == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(
            what, " is not part of a ", c.n_layers, "-layer llama model (unsupported variant?)"));
      }
      role = match->role;
      if (role == LayerRole::kIgnoredPredictor) {
        ++ignored_predictor;
        continue;
      }
      if (role == LayerRole::kIgnored) continue;
      if (parts[2] == "ffn_down_t") has_down_t = true;
      our_name = tensor_names::Layer(layer, match->our_suffix);
    }
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
    SourceTensor tensor =
        role == LayerRole::kTransposed
            ? TransposedTensor(our_name, rows, cols, *type->dtype, StoredMatrixDecoder(*matrix))
            : DirectTensor(our_name, *matrix, /*vector=*/shape.size() == 1);
    if (!tensors.emplace(our_name, std::move(tensor)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": the file holds both ffn_down and ffn_down_t of a layer"));
    }
  }
  c.tied_embeddings = tensors.count(tensor_names::kOutput) == 0;

  // The activation, where the file says it (see the header comment).
  std::optional<Activation> declared;
  std::string declared_by;
  const bool powerinfer_sparse = gguf->powerinfer_magic() || has_down_t || ignored_predictor > 0 ||
                                 gguf->Has("powerinfer.sparse_threshold");
  if (*arch == "bamboo") {
    declared = Activation{ActivationKind::kDRelu, 0.0f};
    declared_by = "PowerInfer's bamboo architecture";
  } else if (powerinfer_sparse) {
    declared = Activation{ActivationKind::kRelu, 0.0f};
    declared_by = "a PowerInfer sparse llama GGUF";
  }
  c.ffn_act = ChooseFfnActivation(flags, declared, declared_by, model.notes);
  c.norm_act = ChooseNormActivation(flags);
  if (!declared && !flags.ffn_act) {
    model.notes.push_back(
        "the GGUF does not record the FFN activation: assuming silu (use --ffn-act for ReLU "
        "models)");
  }
  if (ignored_predictor > 0) {
    model.notes.push_back(absl::StrCat(
        "ignored ", ignored_predictor,
        " PowerInfer predictor tensors (fc1/fc2) in the model; import them as its predictor, "
        "without training: pi-train-predictor -m MODEL.pi --import ",
        path));
  }

  absl::StatusOr<std::vector<SourceTensor>> assembled =
      AssembleTensors(c, std::move(tensors), path);
  if (!assembled.ok()) return assembled.status();
  model.tensors = *std::move(assembled);
  return model;
}

}  // namespace pinfer
