#include "tests/convert/hf_fixture.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>

#include "format/byte_io.h"
#include "format/half.h"
#include "gtest/gtest.h"
#include "tests/convert/spm_helper.h"
#include "tests/convert/test_util.h"

namespace pinfer::testing {

namespace fs = std::filesystem;

const std::string& TestTokenizerModel() {
  // ctest runs every test in its own process, many at once: train once into a private prefix and
  // publish the result with an atomic rename, so that a process sees a whole file or none.
  static const std::string path = [] {
    const fs::path dir = fs::path(::testing::TempDir()) / "pinfer_convert_test_spm";
    fs::create_directories(dir);
    const fs::path model = dir / "tokenizer_v1.model";
    if (fs::exists(model)) return model.string();
    const std::string prefix = (dir / ("tokenizer." + std::to_string(getpid()))).string();
    const std::string error = TrainLlamaStyleSentencePiece(
        RepoPath("tests/data/text/tinystories_valid_head.txt"), prefix, 400, 4000);
    EXPECT_EQ(error, "");
    fs::rename(prefix + ".model", model);
    fs::remove(prefix + ".vocab");
    return model.string();
  }();
  return path;
}

int64_t TestTokenizerSize() {
  static const int64_t size =
      static_cast<int64_t>(SentencePiecePieces(TestTokenizerModel()).size());
  return size;
}

std::vector<uint8_t> EncodeAs(const std::string& dtype, const std::vector<float>& values) {
  std::vector<uint8_t> bytes;
  if (dtype == "F32") {
    bytes.resize(values.size() * 4);
    std::memcpy(bytes.data(), values.data(), bytes.size());
  } else {
    bytes.resize(values.size() * 2);
    for (size_t i = 0; i < values.size(); ++i) {
      const uint16_t h = dtype == "F16" ? F32ToF16(values[i]) : F32ToBF16(values[i]);
      std::memcpy(bytes.data() + 2 * i, &h, 2);
    }
  }
  return bytes;
}

void WriteSafetensors(const std::string& path, const std::vector<RawTensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  header["__metadata__"] = {{"format", "pt"}};
  uint64_t offset = 0;
  for (const RawTensor& t : tensors) {
    header[t.name] = {{"dtype", t.dtype},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string text = header.dump();
  while ((text.size() + 8) % 8 != 0) text.push_back(' ');  // the Rust writer pads to 8
  ByteWriter w;
  w.Put<uint64_t>(text.size());
  w.PutBytes(text.data(), text.size());
  for (const RawTensor& t : tensors) w.PutBytes(t.bytes.data(), t.bytes.size());
  WriteFileBytes(path, w.bytes());
}

namespace {

// UTF-8 code point boundaries of `s` (Python's str slicing positions).
std::vector<size_t> CodePointStarts(const std::string& s) {
  std::vector<size_t> starts;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) starts.push_back(i);
  }
  return starts;
}

nlohmann::json AddedToken(int id, const std::string& content) {
  return {{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", false},
          {"rstrip", false}, {"normalized", false}, {"special", true}};
}

nlohmann::json ConfigFor(const HfSpec& spec, int64_t vocab) {
  nlohmann::json c;
  auto auto_map = [](const std::string& config, const std::string& model) {
    return nlohmann::json{
        {"AutoConfig", config}, {"AutoModel", model}, {"AutoModelForCausalLM", model}};
  };
  switch (spec.variant) {
    case HfVariant::kLlama2:
      // meta-llama/Llama-2-7b-hf
      c = {{"_name_or_path", "meta-llama/Llama-2-7b-hf"},
           {"architectures", {"LlamaForCausalLM"}},
           {"bos_token_id", 1},
           {"eos_token_id", 2},
           {"hidden_act", "silu"},
           {"initializer_range", 0.02},
           {"max_position_embeddings", 4096},
           {"model_type", "llama"},
           {"pretraining_tp", 1},
           {"rms_norm_eps", 1e-05},
           {"rope_scaling", nullptr},
           {"torch_dtype", "float16"},
           {"transformers_version", "4.31.0.dev0"},
           {"use_cache", true}};
      break;
    case HfVariant::kReluLlama:
      // SparseLLM/ReluLLaMA-7B config.json (no rope_theta: transformers' default 10000)
      c = {{"_name_or_path", "meta-llama/Llama-2-7b-hf"},
           {"architectures", {"LlamaForCausalLM"}},
           {"bos_token_id", 1},
           {"eos_token_id", 2},
           {"hidden_act", "relu"},
           {"initializer_range", 0.02},
           {"max_length", 4096},
           {"max_position_embeddings", 2048},
           {"model_type", "llama"},
           {"pad_token_id", 0},
           {"pretraining_tp", 1},
           {"rms_norm_eps", 1e-05},
           {"rope_scaling", nullptr},
           {"torch_dtype", "float32"},
           {"transformers_version", "4.31.0"},
           {"use_cache", true}};
      break;
    case HfVariant::kProSparse:
      // SparseLLM/prosparse-llama-2-7b config.json
      c = {{"_name_or_path", "SparseLLM/prosparse-llama-2-7b"},
           {"architectures", {"SparseLlamaForCausalLM"}},
           {"auto_map", auto_map("configuration_sparsellama.SparseLlamaConfig",
                                 "modeling_sparsellama.SparseLlamaForCausalLM")},
           {"bos_token_id", 1},
           {"eos_token_id", 2},
           {"hidden_act", "fatrelu"},
           {"hidden_act_param", 0.01},
           {"initializer_range", 0.02},
           {"max_position_embeddings", 4096},
           {"model_type", "sparsellama"},
           {"pretraining_tp", 1},
           {"rms_norm_eps", 1e-05},
           {"rope_scaling", nullptr},
           {"torch_dtype", "bfloat16"},
           {"transformers_version", "4.31.0.dev0"},
           {"use_cache", true},
           {"max_length", 4096}};
      break;
    case HfVariant::kBamboo:
      // PowerInfer/Bamboo-base-v0_1 config.json
      c = {{"architectures", {"BambooForCausalLM"}},
           {"auto_map",
            auto_map("configuration_bamboo.BambooConfig", "modeling_bamboo.BambooForCausalLM")},
           {"bos_token_id", 1},
           {"eos_token_id", 2},
           {"hidden_act", "relu"},
           {"initializer_range", 0.02},
           {"max_position_embeddings", 32768},
           {"model_type", "bamboo"},
           {"rms_norm_eps", 1e-05},
           {"rope_theta", 10000.0},
           {"sliding_window", 4096},
           {"torch_dtype", "bfloat16"},
           {"transformers_version", "4.34.0.dev0"},
           {"use_cache", true}};
      break;
    case HfVariant::kMistral:
      // mistralai/Mistral-7B-v0.1 config.json
      c = {{"architectures", {"MistralForCausalLM"}},
           {"bos_token_id", 1},
           {"eos_token_id", 2},
           {"hidden_act", "silu"},
           {"initializer_range", 0.02},
           {"max_position_embeddings", 32768},
           {"model_type", "mistral"},
           {"rms_norm_eps", 1e-05},
           {"rope_theta", 10000.0},
           {"sliding_window", 4096},
           {"torch_dtype", "bfloat16"},
           {"transformers_version", "4.34.0.dev0"},
           {"use_cache", true}};
      break;
    case HfVariant::kLlama3:
      // meta-llama/Llama-3.1-8B config.json, but the fixture's token ids: its vocabulary is the
      // test SentencePiece model's, not the 128256 byte-level BPE tokens (bos 128000, eos 128001).
      c = {{"architectures", {"LlamaForCausalLM"}},
           {"attention_bias", false},
           {"attention_dropout", 0.0},
           {"bos_token_id", 1},
           {"eos_token_id", 2},
           {"hidden_act", "silu"},
           {"initializer_range", 0.02},
           {"max_position_embeddings", 131072},
           {"mlp_bias", false},
           {"model_type", "llama"},
           {"pretraining_tp", 1},
           {"rms_norm_eps", 1e-05},
           {"rope_scaling",
            {{"factor", 8.0},
             {"low_freq_factor", 1.0},
             {"high_freq_factor", 4.0},
             {"original_max_position_embeddings", 8192},
             {"rope_type", "llama3"}}},
           {"rope_theta", 500000.0},
           {"torch_dtype", "bfloat16"},
           {"transformers_version", "4.43.0.dev0"},
           {"use_cache", true}};
      break;
  }
  c["hidden_size"] = spec.dim;
  c["intermediate_size"] = spec.n_ff;
  c["num_attention_heads"] = spec.n_heads;
  c["num_hidden_layers"] = spec.n_layers;
  c["num_key_value_heads"] = spec.n_kv_heads;
  c["tie_word_embeddings"] = spec.tied;
  c["vocab_size"] = vocab;
  c.merge_patch(spec.config_patch);
  return c;
}

// Values representable in `dtype`, so that decoded outputs compare exactly.
std::vector<float> RandomValues(std::mt19937& rng, size_t n, float mean, float stddev,
                                const std::string& dtype) {
  std::normal_distribution<float> dist(mean, stddev);
  std::vector<float> v(n);
  for (float& x : v) {
    x = dist(rng);
    if (dtype == "F16") x = F16ToF32(F32ToF16(x));
    if (dtype == "BF16") x = BF16ToF32(F32ToBF16(x));
  }
  return v;
}

}  // namespace

nlohmann::json TokenizerJsonFromModel(const std::string& model_path) {
  const std::vector<SpmPiece> pieces = SentencePiecePieces(model_path);
  nlohmann::json vocab = nlohmann::json::object();
  std::map<std::string, int> id_of;
  for (size_t i = 0; i < pieces.size(); ++i) {
    vocab[pieces[i].piece] = i;
    id_of[pieces[i].piece] = static_cast<int>(i);
  }
  // transformers' SentencePieceExtractor: every split of a piece into two vocabulary pieces is a
  // merge, ranked by the piece's score (then by the ids of the halves).
  struct Merge {
    std::string left, right;
    float score;
    int left_id, right_id;
  };
  std::vector<Merge> merges;
  for (const SpmPiece& p : pieces) {
    std::vector<Merge> local;
    for (size_t cut : CodePointStarts(p.piece)) {
      if (cut == 0) continue;
      const std::string left = p.piece.substr(0, cut), right = p.piece.substr(cut);
      auto l = id_of.find(left), r = id_of.find(right);
      if (l != id_of.end() && r != id_of.end())
        local.push_back({left, right, p.score, l->second, r->second});
    }
    std::sort(local.begin(), local.end(), [](const Merge& a, const Merge& b) {
      return std::pair(a.left_id, a.right_id) < std::pair(b.left_id, b.right_id);
    });
    merges.insert(merges.end(), local.begin(), local.end());
  }
  std::stable_sort(merges.begin(), merges.end(),
                   [](const Merge& a, const Merge& b) { return a.score > b.score; });
  nlohmann::json merge_list = nlohmann::json::array();
  for (const Merge& m : merges) merge_list.push_back(m.left + " " + m.right);
  const std::string space = "\xe2\x96\x81";
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", {AddedToken(0, "<unk>"), AddedToken(1, "<s>"), AddedToken(2, "</s>")}},
          {"normalizer",
           {{"type", "Sequence"},
            {"normalizers",
             {{{"type", "Prepend"}, {"prepend", space}},
              {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", space}}}}}},
          {"pre_tokenizer", nullptr},
          {"decoder",
           {{"type", "Sequence"},
            {"decoders",
             {{{"type", "Replace"}, {"pattern", {{"String", space}}}, {"content", " "}},
              {{"type", "ByteFallback"}},
              {{"type", "Fuse"}},
              {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", "<unk>"},
            {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr},
            {"fuse_unk", true},
            {"byte_fallback", true},
            {"vocab", vocab},
            {"merges", merge_list}}}};
}

HfModel WriteHfModel(const std::string& dir, const HfSpec& spec) {
  fs::create_directories(dir);
  HfModel model;
  model.dir = dir;
  model.vocab_size = TestTokenizerSize();
  model.config = ConfigFor(spec, model.vocab_size);
  WriteFileText(dir + "/config.json", model.config.dump(2));

  std::mt19937 rng(spec.seed);
  const uint64_t d = spec.dim, ff = spec.n_ff, hd = spec.dim / spec.n_heads;
  const uint64_t q = spec.n_heads * hd, kv = spec.n_kv_heads * hd, v = model.vocab_size;
  auto add = [&](const std::string& name, std::vector<uint64_t> shape, float mean, float stddev) {
    uint64_t n = 1;
    for (uint64_t s : shape) n *= s;
    model.weights[name] = {shape, RandomValues(rng, n, mean, stddev, spec.dtype)};
  };
  const float w = spec.weight_std;
  add("model.embed_tokens.weight", {v, d}, 0.0f, w);
  for (int64_t l = 0; l < spec.n_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {d}, 1.0f, 0.1f);
    add(p + "self_attn.q_proj.weight", {q, d}, 0.0f, w);
    add(p + "self_attn.k_proj.weight", {kv, d}, 0.0f, w);
    add(p + "self_attn.v_proj.weight", {kv, d}, 0.0f, w);
    add(p + "self_attn.o_proj.weight", {d, q}, 0.0f, w);
    add(p + "post_attention_layernorm.weight", {d}, 1.0f, 0.1f);
    add(p + "mlp.gate_proj.weight", {ff, d}, 0.0f, w);
    add(p + "mlp.up_proj.weight", {ff, d}, 0.0f, w);
    add(p + "mlp.down_proj.weight", {d, ff}, 0.0f, w);
  }
  add("model.norm.weight", {d}, 1.0f, 0.1f);
  if (!spec.tied) add("lm_head.weight", {v, d}, 0.0f, w);

  // Shards in the order transformers writes them, split as evenly as the tensor list allows.
  std::vector<std::vector<RawTensor>> shards(static_cast<size_t>(spec.shards));
  nlohmann::json weight_map = nlohmann::json::object();
  uint64_t total = 0;
  size_t i = 0;
  for (const auto& [name, w] : model.weights) {
    const size_t shard = i++ * shards.size() / model.weights.size();
    shards[shard].push_back({name, spec.dtype, w.shape, EncodeAs(spec.dtype, w.values)});
    total += shards[shard].back().bytes.size();
  }
  for (size_t s = 0; s < shards.size(); ++s) {
    char file[64];
    std::snprintf(file, sizeof(file), "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
    const std::string name = shards.size() == 1 ? "model.safetensors" : file;
    WriteSafetensors(dir + "/" + name, shards[s]);
    for (const RawTensor& t : shards[s]) weight_map[t.name] = name;
  }
  if (shards.size() > 1) {
    WriteFileText(
        dir + "/model.safetensors.index.json",
        nlohmann::json{{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}}.dump(2));
  }

  if (spec.tokenizer_model) fs::copy_file(TestTokenizerModel(), dir + "/tokenizer.model");
  if (spec.tokenizer_json) {
    WriteFileText(dir + "/tokenizer.json", TokenizerJsonFromModel(TestTokenizerModel()).dump(2));
  }
  auto special = [](const std::string& content) {
    return nlohmann::json{{"__type", "AddedToken"}, {"content", content}, {"lstrip", false},
                          {"normalized", false},    {"rstrip", false},    {"single_word", false}};
  };
  nlohmann::json tokenizer_config = {
      {"add_bos_token", true},
      {"add_eos_token", false},
      {"bos_token", special("<s>")},
      {"clean_up_tokenization_spaces", false},
      {"eos_token", special("</s>")},
      {"legacy", false},
      {"pad_token", nullptr},
      {"sp_model_kwargs", nlohmann::json::object()},
      {"tokenizer_class", "LlamaTokenizer"},
      {"unk_token", special("<unk>")},
      {"chat_template",
       "{{ bos_token }}{% for message in messages %}{{ '[INST] ' + message['content'] + ' [/INST]' "
       "}}{% endfor %}"}};
  WriteFileText(dir + "/tokenizer_config.json", tokenizer_config.dump(2));
  return model;
}

}  // namespace pinfer::testing
