#include "tools/convert/hf_source.h"

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string_view>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "format/mapped_file.h"
#include "runtime/model/tensor_names.h"
#include "tools/convert/hf_config.h"
#include "tools/convert/hf_tokenizer.h"
#include "tools/convert/json_fields.h"
#include "tools/convert/model_tensors.h"
#include "tools/convert/safetensors_file.h"
#include "tools/convert/tensor_source.h"

namespace pinfer {
namespace {

namespace fs = std::filesystem;

// kFused{Q,K,V}: one piece of Falcon's fused query_key_value (FusedQkvRows).
enum class Role { kDirect, kVector, kRopeQ, kRopeK, kTransposed, kFusedQ, kFusedK, kFusedV };
struct LayerTensor {
  const char* hf_suffix;
  const char* our_suffix;
  Role role;
};
constexpr LayerTensor kLayerTensors[] = {
    {"input_layernorm.weight", "attn_norm", Role::kVector},
    {"self_attn.q_proj.weight", "attn_q", Role::kRopeQ},
    {"self_attn.k_proj.weight", "attn_k", Role::kRopeK},
    {"self_attn.v_proj.weight", "attn_v", Role::kDirect},
    {"self_attn.o_proj.weight", "attn_output", Role::kDirect},
    {"post_attention_layernorm.weight", "ffn_norm", Role::kVector},
    {"mlp.gate_proj.weight", "ffn_gate", Role::kDirect},
    {"mlp.up_proj.weight", "ffn_up", Role::kDirect},
    {"mlp.down_proj.weight", "ffn_down_t", Role::kTransposed},
};

// OPTForCausalLM's tensors (under "model.decoder." as saved from OPTForCausalLM, or "decoder." as
// in the original facebook/opt-* checkpoints): fc1 is the gate of our gate-less FFN, fc2 is
// stored transposed as ffn_down_t; q/k/v need no permutation (no RoPE).
constexpr LayerTensor kOptLayerTensors[] = {
    {"self_attn_layer_norm.weight", "attn_norm", Role::kVector},
    {"self_attn_layer_norm.bias", "attn_norm_b", Role::kVector},
    {"self_attn.q_proj.weight", "attn_q", Role::kDirect},
    {"self_attn.q_proj.bias", "attn_q_b", Role::kVector},
    {"self_attn.k_proj.weight", "attn_k", Role::kDirect},
    {"self_attn.k_proj.bias", "attn_k_b", Role::kVector},
    {"self_attn.v_proj.weight", "attn_v", Role::kDirect},
    {"self_attn.v_proj.bias", "attn_v_b", Role::kVector},
    {"self_attn.out_proj.weight", "attn_output", Role::kDirect},
    {"self_attn.out_proj.bias", "attn_output_b", Role::kVector},
    {"final_layer_norm.weight", "ffn_norm", Role::kVector},
    {"final_layer_norm.bias", "ffn_norm_b", Role::kVector},
    {"fc1.weight", "ffn_gate", Role::kDirect},
    {"fc1.bias", "ffn_gate_b", Role::kVector},
    {"fc2.weight", "ffn_down_t", Role::kTransposed},
    {"fc2.bias", "ffn_down_b", Role::kVector},
};

// What an HF tensor name is in our model.pi: our name and how it is converted; lm_head.weight
// is reported as such (kept or dropped by the caller); nullopt: not a tensor of this model.
struct MappedName {
  std::string our_name;
  Role role = Role::kDirect;
  bool lm_head = false;
  bool skip = false;  // a tensor we recompute (rotary inv_freq)
};
using MappedNames = std::vector<MappedName>;  // empty: not a tensor of this model

// FalconForCausalLM (transformer.*): the fused query_key_value is split into attn_q/k/v;
// Falcon-7B's one input_layernorm is both norms of its parallel layer; dense_h_to_4h is the gate of
// our gate-less FFN and dense_4h_to_h is stored transposed.
MappedNames MapFalconName(const ModelConfig& c, const std::string& name) {
  namespace tn = tensor_names;
  if (name == "transformer.word_embeddings.weight") return {{tn::kTokenEmbedding}};
  if (name == "transformer.ln_f.weight") return {{tn::kOutputNorm, Role::kVector}};
  if (name == "transformer.ln_f.bias") return {{tn::kOutputNormBias, Role::kVector}};
  constexpr std::string_view kPrefix = "transformer.h.";
  if (!name.starts_with(kPrefix)) return {};
  const std::string rest = name.substr(kPrefix.size());
  const size_t dot = rest.find('.');
  int l = -1;
  if (dot == std::string::npos || !absl::SimpleAtoi(rest.substr(0, dot), &l) || l < 0 ||
      l >= c.n_layers) {
    return {};
  }
  const std::string suffix = rest.substr(dot + 1);
  auto norm = [&](const char* ours, bool bias) {
    return MappedName{tn::Layer(l, absl::StrCat(ours, bias ? "_b" : "").c_str()), Role::kVector};
  };
  for (const bool bias : {false, true}) {
    const std::string part = bias ? ".bias" : ".weight";
    if (suffix == "input_layernorm" + part)
      return {norm("attn_norm", bias), norm("ffn_norm", bias)};
    if (suffix == "ln_attn" + part) return {norm("attn_norm", bias)};
    if (suffix == "ln_mlp" + part) return {norm("ffn_norm", bias)};
  }
  if (suffix == "self_attention.query_key_value.weight") {
    return {{tn::AttnQ(l), Role::kFusedQ},
            {tn::AttnK(l), Role::kFusedK},
            {tn::AttnV(l), Role::kFusedV}};
  }
  if (suffix == "self_attention.dense.weight") return {{tn::AttnOutput(l)}};
  if (suffix == "mlp.dense_h_to_4h.weight") return {{tn::FfnGate(l)}};
  if (suffix == "mlp.dense_4h_to_h.weight") return {{tn::FfnDownT(l), Role::kTransposed}};
  if (suffix == "self_attention.rotary_emb.inv_freq") return {{"", Role::kDirect, false, true}};
  return {};
}

// The rows of Falcon's fused query_key_value that make our q, k or v. The fused matrix holds
// n_kv_heads groups, each of n_heads/n_kv_heads query heads, then the group's key head and value
// head (Falcon-7B's multi-query layout is one group; the 40B's new_decoder_architecture has 8);
// q and k are also taken from the half-split RoPE pairs to our interleaved ones.
std::vector<int64_t> FusedQkvRows(const ModelConfig& c, Role role) {
  const int64_t hd = c.head_dim, group = c.n_heads / c.n_kv_heads;
  const int64_t heads = role == Role::kFusedQ ? c.n_heads : c.n_kv_heads;
  std::vector<int64_t> rows =
      role == Role::kFusedV ? std::vector<int64_t>() : HalfSplitToInterleavedRows(heads, hd);
  if (role == Role::kFusedV) {
    for (int64_t r = 0; r < heads * hd; ++r) rows.push_back(r);
  }
  for (int64_t& r : rows) {
    const int64_t head = r / hd, within = r % hd;
    const int64_t kv = role == Role::kFusedQ ? head / group : head;
    const int64_t slot = role == Role::kFusedQ   ? head % group
                         : role == Role::kFusedK ? group
                                                 : group + 1;
    r = (kv * (group + 2) + slot) * hd + within;
  }
  return rows;
}

// "<prefix>N.<suffix>" with 0 <= N < n_layers and a suffix of `table`.
template <size_t kSize>
std::optional<MappedName> MapLayerName(const std::string& name, const std::string& prefix,
                                       int64_t n_layers, const LayerTensor (&table)[kSize]) {
  if (!name.starts_with(prefix)) return std::nullopt;
  const std::string rest = name.substr(prefix.size());
  const size_t dot = rest.find('.');
  int layer = -1;
  if (dot == std::string::npos || !absl::SimpleAtoi(rest.substr(0, dot), &layer) || layer < 0 ||
      layer >= n_layers) {
    return std::nullopt;
  }
  const std::string suffix = rest.substr(dot + 1);
  if (suffix == "self_attn.rotary_emb.inv_freq") return MappedName{"", Role::kDirect, false, true};
  for (const LayerTensor& lt : table) {
    if (suffix == lt.hf_suffix)
      return MappedName{tensor_names::Layer(layer, lt.our_suffix), lt.role};
  }
  return std::nullopt;
}

std::optional<MappedName> MapHfName(const ModelConfig& c, const std::string& name) {
  if (name == "lm_head.weight") return MappedName{tensor_names::kOutput, Role::kDirect, true};

  if (c.architecture == "opt") {
    for (const char* prefix : {"model.decoder.", "decoder."}) {
      if (!name.starts_with(prefix)) continue;
      const std::string rest = name.substr(std::string_view(prefix).size());
      if (rest == "embed_tokens.weight") return MappedName{tensor_names::kTokenEmbedding};
      if (rest == "embed_positions.weight") return MappedName{tensor_names::kPositionEmbedding};
      if (rest == "final_layer_norm.weight") {
        return MappedName{tensor_names::kOutputNorm, Role::kVector};
      }
      if (rest == "final_layer_norm.bias") {
        return MappedName{tensor_names::kOutputNormBias, Role::kVector};
      }
      return MapLayerName(name, absl::StrCat(prefix, "layers."), c.n_layers, kOptLayerTensors);
    }
    return std::nullopt;
  }
  if (name == "model.embed_tokens.weight") return MappedName{tensor_names::kTokenEmbedding};
  if (name == "model.norm.weight") return MappedName{tensor_names::kOutputNorm, Role::kVector};
  return MapLayerName(name, "model.layers.", c.n_layers, kLayerTensors);
}

struct Shard {
  std::shared_ptr<MappedFile> file;
  std::shared_ptr<SafetensorsFile> tensors;
};

// The weight files: the shards the index lists, or model.safetensors.
absl::StatusOr<std::vector<std::string>> WeightFiles(const fs::path& dir,
                                                     std::map<std::string, std::string>* owner) {
  const fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(index)) {
    absl::StatusOr<nlohmann::json> json = ReadJsonFile(index.string());
    if (!json.ok()) return json.status();
    auto map = json->is_object() ? json->find("weight_map") : json->end();
    if (map == json->end() || !map->is_object() || map->empty()) {
      return absl::InvalidArgumentError(absl::StrCat(index.string(), ": has no weight_map"));
    }
    std::set<std::string> files;
    for (const auto& [tensor, file] : map->items()) {
      if (!file.is_string() || file.get<std::string>().empty() ||
          file.get<std::string>().find('/') != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat(index.string(), ": weight_map entry '",
                                                       tensor, "' does not name a shard file"));
      }
      files.insert(file.get<std::string>());
      (*owner)[tensor] = file.get<std::string>();
    }
    std::vector<std::string> paths;
    for (const std::string& f : files) paths.push_back((dir / f).string());
    return paths;
  }
  if (fs::exists(dir / "model.safetensors"))
    return std::vector<std::string>{(dir / "model.safetensors").string()};
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("pytorch_model") && name.ends_with(".bin")) {
      return absl::InvalidArgumentError(
          absl::StrCat(dir.string(),
                       ": PyTorch .bin checkpoints are not supported; save the model as "
                       "safetensors (model.save_pretrained(dir, safe_serialization=True))"));
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      dir.string(), ": has neither model.safetensors nor model.safetensors.index.json"));
}

}  // namespace

absl::StatusOr<SourceModel> ReadHfDirectory(const std::string& dir_name,
                                            const std::string& tokenizer_path,
                                            const ActivationFlags& flags) {
  const fs::path dir(dir_name);
  const fs::path config_path = dir / "config.json";
  if (!fs::exists(config_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir_name, ": not a model directory (config.json is missing)"));
  }
  absl::StatusOr<nlohmann::json> config_json = ReadJsonFile(config_path.string());
  if (!config_json.ok()) return config_json.status();
  absl::StatusOr<HfConfig> hf = ParseHfConfig(*config_json, config_path.string());
  if (!hf.ok()) return hf.status();

  SourceModel model;
  model.notes = hf->notes;
  model.config = hf->config;
  ModelConfig& c = model.config;
  c.name = fs::absolute(dir).lexically_normal().filename().string();
  if (c.name.empty())
    c.name = fs::absolute(dir).lexically_normal().parent_path().filename().string();
  c.ffn_act = ChooseFfnActivation(flags, hf->declared_ffn_act, hf->declared_by, model.notes);
  c.norm_act = ChooseNormActivation(flags);
  model.source_files.push_back(config_path.string());

  std::map<std::string, std::string> owner;  // tensor -> shard file (index only)
  absl::StatusOr<std::vector<std::string>> files = WeightFiles(dir, &owner);
  if (!files.ok()) return files.status();
  std::vector<Shard> shards;
  // tensor name -> (shard, entry)
  std::map<std::string, std::pair<const Shard*, const SafetensorsTensor*>> all;
  shards.reserve(files->size());
  for (const std::string& path : *files) {
    absl::StatusOr<std::unique_ptr<MappedFile>> mapped = MappedFile::Open(path);
    if (!mapped.ok()) return mapped.status();
    Shard shard;
    shard.file = *std::move(mapped);
    absl::StatusOr<SafetensorsFile> parsed = SafetensorsFile::Parse(shard.file->bytes(), path);
    if (!parsed.ok()) return parsed.status();
    shard.tensors = std::make_shared<SafetensorsFile>(*std::move(parsed));
    model.keep_alive.push_back(shard.file);
    model.keep_alive.push_back(shard.tensors);
    model.source_files.push_back(path);
    shards.push_back(std::move(shard));
  }
  for (const Shard& shard : shards) {
    const std::string shard_name = fs::path(shard.tensors->name()).filename().string();
    for (const auto& [name, tensor] : shard.tensors->tensors()) {
      if (!owner.empty()) {
        auto it = owner.find(name);
        if (it == owner.end() || it->second != shard_name) continue;  // the index decides
      }
      if (!all.emplace(name, std::pair{&shard, &tensor}).second) {
        return absl::InvalidArgumentError(
            absl::StrCat(shard.tensors->name(), ": tensor '", name, "' appears in two shards"));
      }
    }
  }
  for (const auto& [name, file] : owner) {
    if (all.find(name) == all.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat((dir / file).string(), ": tensor '", name,
                       "' listed in model.safetensors.index.json is not in this shard"));
    }
  }

  std::map<std::string, SourceTensor> tensors;
  bool has_lm_head = false;
  for (const auto& [name, located] : all) {
    const auto& [shard, info] = located;
    const std::string what = absl::StrCat(shard->tensors->name(), ": tensor '", name, "'");
    MappedNames all_mapped;
    if (c.architecture == "falcon" && name != "lm_head.weight") {
      all_mapped = MapFalconName(c, name);
    } else if (std::optional<MappedName> one = MapHfName(c, name)) {
      all_mapped.push_back(*one);
    }
    if (all_mapped.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(what, " is not part of a ", c.n_layers,
                                                     "-layer ", c.architecture,
                                                     " model (unsupported variant?)"));
    }
    const MappedName* mapped = &all_mapped.front();
    if (mapped->skip) continue;  // we compute RoPE
    if (mapped->lm_head) {
      has_lm_head = true;
      if (c.tied_embeddings) {
        model.notes.push_back("tie_word_embeddings is true: lm_head.weight ignored");
        continue;
      }
    }
    for (const MappedName& piece : all_mapped) {
      const std::string& our_name = piece.our_name;
      const Role role = piece.role;
      std::optional<DType> dtype = SafetensorsDType(info->dtype);
      if (!dtype) {
        return absl::InvalidArgumentError(absl::StrCat(
            what, " has dtype ", info->dtype, ", which pinfer cannot import (F32, F16 or BF16)"));
      }
      const bool vector = role == Role::kVector;
      if (info->shape.size() != (vector ? 1u : 2u)) {
        return absl::InvalidArgumentError(absl::StrCat(what, ": inconsistent shape ",
                                                       ShapeText(info->shape), ", expected ",
                                                       vector ? 1 : 2, " dimensions"));
      }
      const int64_t rows = vector ? 1 : static_cast<int64_t>(info->shape[0]);
      const int64_t cols = static_cast<int64_t>(info->shape.back());
      absl::StatusOr<StoredMatrix> matrix =
          MakeStoredMatrix(shard->tensors->Data(*info), *dtype, rows, cols, what);
      if (!matrix.ok()) return matrix.status();
      SourceTensor tensor;
      switch (role) {
        case Role::kDirect:
        case Role::kVector:
          tensor = DirectTensor(our_name, *matrix, vector);
          break;
        case Role::kRopeQ:
        case Role::kRopeK: {
          const int64_t heads = role == Role::kRopeQ ? c.n_heads : c.n_kv_heads;
          if (rows != heads * c.head_dim) {
            return absl::InvalidArgumentError(
                absl::StrCat(what, ": inconsistent shape ", ShapeText(info->shape), ": ", heads,
                             " heads of ", c.head_dim, " need ", heads * c.head_dim, " rows"));
          }
          tensor =
              PermutedRowsTensor(our_name, *matrix, HalfSplitToInterleavedRows(heads, c.head_dim));
          break;
        }
        case Role::kTransposed:
          tensor = TransposedTensor(our_name, rows, cols, *dtype, StoredMatrixDecoder(*matrix));
          break;
        case Role::kFusedQ:
        case Role::kFusedK:
        case Role::kFusedV: {
          const int64_t fused = (c.n_heads + 2 * c.n_kv_heads) * c.head_dim;
          if (rows != fused) {
            return absl::InvalidArgumentError(
                absl::StrCat(what, ": inconsistent shape ", ShapeText(info->shape), ": ", c.n_heads,
                             " query and ", c.n_kv_heads, " key/value heads of ", c.head_dim,
                             " need ", fused, " rows"));
          }
          std::vector<int64_t> source = FusedQkvRows(c, role);
          const uint64_t count = source.size();
          tensor = PermutedRowsTensor(our_name, *matrix, std::move(source));
          tensor.shape[0] = count;  // a piece of the fused rows
          break;
        }
      }
      tensors.emplace(our_name, std::move(tensor));
    }
  }
  if (!c.tied_embeddings && !has_lm_head) {
    return absl::InvalidArgumentError(absl::StrCat(
        dir_name, ": lm_head.weight is missing and config.json does not tie the embeddings"));
  }

  // The tokenizer is padded up to vocab_size: the count is checked against the embedding first.
  if (absl::Status s = CheckCountsAgainstTensors(c, tensors, dir_name); !s.ok()) return s;
  absl::StatusOr<Vocabulary> vocabulary =
      ReadHfTokenizer(dir_name, tokenizer_path, *hf, c.vocab_size, model.notes);
  if (!vocabulary.ok()) return vocabulary.status();
  model.vocabulary = *std::move(vocabulary);
  for (const char* name : {"tokenizer.model", "tokenizer.json", "tokenizer_config.json"}) {
    if (tokenizer_path.empty() && fs::exists(dir / name)) {
      model.source_files.push_back((dir / name).string());
    }
  }
  if (!tokenizer_path.empty()) model.source_files.push_back(tokenizer_path);

  absl::StatusOr<std::vector<SourceTensor>> assembled =
      AssembleTensors(c, std::move(tensors), dir_name);
  if (!assembled.ok()) return assembled.status();
  model.tensors = *std::move(assembled);
  model.format = absl::StrCat("HF safetensors (", hf->architecture, ", ", shards.size(),
                              shards.size() == 1 ? " file)" : " shards)");
  return model;
}

}  // namespace pinfer
