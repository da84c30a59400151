// Bad input through the real tools: a table of truncated, corrupt, wrong-magic, unsupported-dtype,
// unknown-architecture and inconsistent-shape inputs for every source format (llama2.c, GGUF,
// HF safetensors) and for .pi files. Each must give exit status 1 and exactly one stderr line
// that names the file and the reason, and a failed conversion must leave no file behind.
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <functional>

#include "format/checksum.h"
#include "format/pi_format.h"
#include "gtest/gtest.h"
#include "tests/convert/gguf_builder.h"
#include "tests/convert/hf_fixture.h"
#include "tests/convert/test_util.h"

namespace pinfer::testing {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> Cut(std::vector<uint8_t> bytes, size_t keep) {
  bytes.resize(std::min(keep, bytes.size()));
  return bytes;
}

template <typename T>
void Poke(std::vector<uint8_t>& bytes, size_t offset, T value) {
  std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

// A tiny, valid llama GGUF (dim 32, 2 heads, n_ff 64, 1 layer, 8 tokens) with knobs to break it.
struct TinyGguf {
  std::string arch = "llama";
  std::string tokenizer = "llama";
  uint32_t q_type = 0;
  std::vector<uint64_t> q_ne = {32, 32};
  bool drop_up = false;
  uint32_t block_count = 1;
  std::function<void(GgufBuilder&)> extra;
};

std::vector<uint8_t> Build(const TinyGguf& t) {
  GgufBuilder b;
  const std::string a = t.arch;
  b.AddString("general.architecture", a);
  b.AddUint32(a + ".context_length", 64);
  b.AddUint32(a + ".embedding_length", 32);
  b.AddUint32(a + ".feed_forward_length", 64);
  b.AddUint32(a + ".block_count", t.block_count);
  b.AddUint32(a + ".attention.head_count", 2);
  b.AddUint32(a + ".attention.head_count_kv", 2);
  b.AddFloat32(a + ".attention.layer_norm_rms_epsilon", 1e-5f);
  b.AddString("tokenizer.ggml.model", t.tokenizer);
  AddTinyLlamaVocabulary(b);
  if (t.extra) t.extra(b);
  auto f32 = [](uint64_t n) { return std::vector<uint8_t>(n * 4, 0); };
  b.AddTensor("token_embd.weight", {32, 8}, 0, f32(256));
  b.AddTensor("output_norm.weight", {32}, 0, f32(32));
  b.AddTensor("blk.0.attn_norm.weight", {32}, 0, f32(32));
  uint64_t q_bytes = t.q_ne[0] * t.q_ne[1] * 4;
  if (t.q_type == 12) q_bytes = t.q_ne[0] / 256 * 144 * t.q_ne[1];  // Q4_K
  b.AddTensor("blk.0.attn_q.weight", t.q_ne, t.q_type, std::vector<uint8_t>(q_bytes, 0));
  b.AddTensor("blk.0.attn_k.weight", {32, 32}, 0, f32(1024));
  b.AddTensor("blk.0.attn_v.weight", {32, 32}, 0, f32(1024));
  b.AddTensor("blk.0.attn_output.weight", {32, 32}, 0, f32(1024));
  b.AddTensor("blk.0.ffn_norm.weight", {32}, 0, f32(32));
  b.AddTensor("blk.0.ffn_gate.weight", {32, 64}, 0, f32(2048));
  if (!t.drop_up) b.AddTensor("blk.0.ffn_up.weight", {32, 64}, 0, f32(2048));
  b.AddTensor("blk.0.ffn_down.weight", {64, 32}, 0, f32(2048));
  return b.Build();
}

std::string Put(const std::string& path, const std::vector<uint8_t>& bytes) {
  WriteFileBytes(path, bytes);
  return path;
}

std::string Hf(const std::string& dir, HfVariant variant = HfVariant::kReluLlama) {
  HfSpec spec;
  spec.variant = variant;
  WriteHfModel(dir + "/hf", spec);
  return dir + "/hf";
}

// Rewrites config.json with one key changed.
void EditConfig(const std::string& hf, const std::string& key, nlohmann::json value) {
  nlohmann::json config = nlohmann::json::parse(ReadFileBytes(hf + "/config.json"));
  config[key] = std::move(value);
  WriteFileText(hf + "/config.json", config.dump());
}

// Rewrites model.safetensors with one tensor replaced (or removed when dtype is empty).
void EditWeight(const std::string& hf, const std::string& name, const std::string& dtype,
                std::vector<uint64_t> shape) {
  const std::vector<uint8_t> bytes = ReadFileBytes(hf + "/model.safetensors");
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  nlohmann::json header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + n);
  std::vector<RawTensor> tensors;
  for (const auto& [key, entry] : header.items()) {
    if (key == "__metadata__") continue;
    RawTensor t{key, entry["dtype"], entry["shape"].get<std::vector<uint64_t>>(), {}};
    const uint64_t begin = entry["data_offsets"][0], end = entry["data_offsets"][1];
    t.bytes.assign(bytes.begin() + 8 + n + begin, bytes.begin() + 8 + n + end);
    if (key == name) {
      if (dtype.empty()) continue;
      uint64_t elements = 1;
      for (uint64_t d : shape) elements *= d;
      t.dtype = dtype;
      t.shape = shape;
      t.bytes.assign(elements * (dtype == "F64" ? 8 : dtype == "F32" ? 4 : 2), 0);
    }
    tensors.push_back(std::move(t));
  }
  WriteSafetensors(hf + "/model.safetensors", tensors);
}

struct Case {
  const char* name;
  // Creates the input in `dir`; returns pi-convert's arguments (without -o) and the file the
  // error line must name.
  std::function<std::pair<std::vector<std::string>, std::string>(const std::string& dir)> setup;
  const char* reason;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::vector<uint8_t> Stories() {
  return ReadFileBytes(RepoPath("models/stories260K/stories260K.bin"));
}
const std::string kTok512 = RepoPath("models/stories260K/tok512.bin");

std::vector<Case> Cases() {
  using Args = std::pair<std::vector<std::string>, std::string>;
  return {
      // ---- llama2.c
      {"Llama2cTruncated",
       [](const std::string& d) {
         const std::string p = Put(d + "/s.bin", Cut(Stories(), 500000));
         return Args{{p, "--tokenizer", kTok512}, p};
       },
       "truncated"},
      {"Llama2cTrailingBytes",
       [](const std::string& d) {
         std::vector<uint8_t> b = Stories();
         b.resize(b.size() + 100);
         const std::string p = Put(d + "/s.bin", b);
         return Args{{p, "--tokenizer", kTok512}, p};
       },
       "trailing bytes"},
      {"Llama2cInconsistentShape",
       [](const std::string& d) {
         std::vector<uint8_t> b = Stories();
         Poke<int32_t>(b, 12, 7);  // n_heads 7 does not divide dim 64
         const std::string p = Put(d + "/s.bin", b);
         return Args{{p, "--tokenizer", kTok512}, p};
       },
       "inconsistent shapes"},
      {"Llama2cAbsurdHeader",
       [](const std::string& d) {
         std::vector<uint8_t> b = Stories();
         Poke<int32_t>(b, 0, 1 << 20);  // dim 1M: the file cannot hold it
         Poke<int32_t>(b, 12, 1 << 14);
         Poke<int32_t>(b, 16, 1 << 14);
         const std::string p = Put(d + "/s.bin", b);
         return Args{{p, "--tokenizer", kTok512}, p};
       },
       "truncated"},
      {"Llama2cUnknownVersion",
       [](const std::string& d) {
         std::vector<uint8_t> b = ReadFileBytes(RepoPath("models/relu-llama-260k/model_q80.bin"));
         Poke<int32_t>(b, 4, 3);
         const std::string p = Put(d + "/q.bin", b);
         return Args{{p, "--tokenizer", kTok512}, p};
       },
       "version 3 is not supported"},
      {"Llama2cWithoutTokenizer",
       [](const std::string& d) {
         const std::string p = RepoPath("models/stories260K/stories260K.bin");
         return Args{{p}, p};
       },
       "--tokenizer"},
      {"Llama2cTokenizerOfAnotherModel",
       [](const std::string& d) {
         const std::string p = RepoPath("models/relu-llama-260k/tok1024.bin");
         return Args{{RepoPath("models/stories260K/stories260K.bin"), "--tokenizer", p}, p};
       },
       "another model"},
      {"Llama2cTokenizerOfASmallerVocabulary",
       [](const std::string& d) {
         return Args{{RepoPath("models/relu-llama-260k/model_q80.bin"), "--tokenizer", kTok512},
                     kTok512};
       },
       "holds only 512 tokens but the model's vocabulary is 1024: is it the tokenizer of another "
       "model?"},
      {"GgufArchitectureWithControlBytes",
       [](const std::string& d) {
         TinyGguf t;
         t.arch = "\x1b[31mfalcon\x07";
         const std::string p = Put(d + "/s.gguf", Build(t));
         return Args{{p}, p};
       },
       "unknown architecture '\\x1b[31mfalcon\\x07'"},
      {"Llama2cTruncatedTokenizer",
       [](const std::string& d) {
         const std::string p = Put(d + "/tok.bin", Cut(ReadFileBytes(kTok512), 3000));
         return Args{{RepoPath("models/stories260K/stories260K.bin"), "--tokenizer", p}, p};
       },
       "truncated at token"},
      {"UnrecognisedFormat",
       [](const std::string& d) {
         const std::string p = Put(d + "/zero.bin", std::vector<uint8_t>(4096, 0));
         return Args{{p}, p};
       },
       "unrecognised model format"},
      {"MissingSource",
       [](const std::string& d) {
         return Args{{d + "/nothing.gguf"}, d + "/nothing.gguf"};
       },
       "no such file or directory"},
      // ---- GGUF
      {"GgufTruncated",
       [](const std::string& d) {
         const std::vector<uint8_t> b =
             ReadFileBytes(RepoPath("models/stories260K/stories260K.gguf"));
         const std::string p = Put(d + "/s.gguf", Cut(b, b.size() / 2));
         return Args{{p}, p};
       },
       "truncated"},
      {"GgufHeaderOnly",
       [](const std::string& d) {
         const std::string p = Put(d + "/s.gguf", Cut(Build({}), 12));
         return Args{{p}, p};
       },
       "truncated"},
      {"GgufCorruptMetadata",
       [](const std::string& d) {
         std::vector<uint8_t> b = ReadFileBytes(RepoPath("models/stories260K/stories260K.gguf"));
         Poke<uint32_t>(b, 24 + 8 + 21, 77);  // the value type of the first key
         const std::string p = Put(d + "/s.gguf", b);
         return Args{{p}, p};
       },
       "unknown type 77"},
      {"GgufVersion1",
       [](const std::string& d) {
         std::vector<uint8_t> b = Build({});
         Poke<uint32_t>(b, 4, 1);
         const std::string p = Put(d + "/v1.gguf", b);
         return Args{{p}, p};
       },
       "version 1 is not supported"},
      {"GgufUnsupportedDType",
       [](const std::string& d) {
         TinyGguf t;
         t.q_type = 12;
         t.q_ne = {256, 32};
         const std::string p = Put(d + "/k.gguf", Build(t));
         return Args{{p}, p};
       },
       "has type Q4_K, which pinfer cannot import"},
      {"GgufUnknownArchitecture",
       [](const std::string& d) {
         TinyGguf t;
         t.arch = "gptneox";
         const std::string p = Put(d + "/f.gguf", Build(t));
         return Args{{p}, p};
       },
       "unknown architecture 'gptneox' (supported: llama, falcon, and PowerInfer's bamboo and "
       "opt)"},
      {"GgufInconsistentShape",
       [](const std::string& d) {
         TinyGguf t;
         t.q_ne = {32, 16};
         const std::string p = Put(d + "/s.gguf", Build(t));
         return Args{{p}, p};
       },
       "inconsistent shape: tensor 'blk.0.attn_q.weight' is [16, 32]"},
      {"GgufMissingTensor",
       [](const std::string& d) {
         TinyGguf t;
         t.drop_up = true;
         const std::string p = Put(d + "/s.gguf", Build(t));
         return Args{{p}, p};
       },
       "tensor 'blk.0.ffn_up.weight' is missing"},
      {"GgufGpt2Tokenizer",
       [](const std::string& d) {
         TinyGguf t;
         t.tokenizer = "gpt2";
         const std::string p = Put(d + "/s.gguf", Build(t));
         return Args{{p}, p};
       },
       "the gpt2 tokenizer has no tokenizer.ggml.merges"},
      {"GgufMissingHparam",
       [](const std::string& d) {
         std::vector<uint8_t> b = Build({});
         const std::string key = "llama.block_count";
         auto it = std::search(b.begin(), b.end(), key.begin(), key.end());
         *(it + 6) = 'X';  // "llama.Xlock_count": the real key is now missing
         const std::string p = Put(d + "/s.gguf", b);
         return Args{{p}, p};
       },
       "metadata 'llama.block_count' is missing"},
      {"GgufRopeScaling",
       [](const std::string& d) {
         TinyGguf t;
         t.extra = [](GgufBuilder& b) { b.AddString("llama.rope.scaling.type", "yarn"); };
         const std::string p = Put(d + "/s.gguf", Build(t));
         return Args{{p}, p};
       },
       "RoPE scaling 'yarn' is not supported"},
      {"GgufRopeScalingLinearWithoutFactor",
       [](const std::string& d) {
         TinyGguf t;
         t.extra = [](GgufBuilder& b) { b.AddString("llama.rope.scaling.type", "linear"); };
         const std::string p = Put(d + "/s.gguf", Build(t));
         return Args{{p}, p};
       },
       "metadata 'llama.rope.scaling.type' is linear but 'llama.rope.scaling.factor' is missing"},
      {"GgufRopeFreqsOfTheWrongSize",
       [](const std::string& d) {
         TinyGguf t;
         t.extra = [](GgufBuilder& b) {
           b.AddTensor("rope_freqs.weight", {7}, 0, std::vector<uint8_t>(7 * 4, 0));
         };
         const std::string p = Put(d + "/s.gguf", Build(t));
         return Args{{p}, p};
       },
       "tensor 'rope_freqs.weight' must be f32 of 8 values (head size 16 / 2)"},
      {"GgufRopeFreqsNotPositive",
       [](const std::string& d) {
         TinyGguf t;
         t.extra = [](GgufBuilder& b) {
           b.AddTensor("rope_freqs.weight", {8}, 0, std::vector<uint8_t>(8 * 4, 0));
         };
         const std::string p = Put(d + "/s.gguf", Build(t));
         return Args{{p}, p};
       },
       "tensor 'rope_freqs.weight': value 0 is 0 (RoPE divisors must be positive)"},
      {"GgufBlockCountBeyondTheTensors",
       [](const std::string& d) {
         TinyGguf t;
         t.block_count = 1u << 24;
         const std::string p = Put(d + "/s.gguf", Build(t));
         return Args{{p}, p};
       },
       "the header declares 16777216 layers but the tensors are those of 1 layer"},
      {"GgufBlockCountImplausible",
       [](const std::string& d) {
         TinyGguf t;
         t.block_count = 0xFFFFFFF0u;
         const std::string p = Put(d + "/s.gguf", Build(t));
         return Args{{p}, p};
       },
       "'llama.block_count' has an implausible value 4294967280"},
      {"SourceIsAFifo",
       [](const std::string& d) {
         const std::string p = d + "/model.gguf";
         EXPECT_EQ(mkfifo(p.c_str(), 0644), 0);
         return Args{{p}, p};
       },
       "not a regular file (it is a FIFO)"},
      {"LlamaTokenizerIsAFifo",
       [](const std::string& d) {
         const std::string p = d + "/tok.bin";
         EXPECT_EQ(mkfifo(p.c_str(), 0644), 0);
         return Args{{RepoPath("models/stories260K/stories260K.bin"), "--tokenizer", p}, p};
       },
       "not a regular file (it is a FIFO)"},
      // ---- HF safetensors
      {"HfLayerCountBeyondTheTensors",
       [](const std::string& d) {
         const std::string hf = Hf(d);
         EditConfig(hf, "num_hidden_layers", 1 << 24);
         return Args{{hf}, hf};
       },
       "the header declares 16777216 layers but the tensors are those of 2 layers"},
      {"HfVocabularyBeyondTheEmbedding",
       [](const std::string& d) {
         const std::string hf = Hf(d);
         EditConfig(hf, "vocab_size", 1 << 24);
         return Args{{hf}, hf};
       },
       "the header declares a vocabulary of 16777216 tokens but the token embedding has"},
      {"HfVocabularyImplausible",
       [](const std::string& d) {
         const std::string hf = Hf(d);
         EditConfig(hf, "vocab_size", (int64_t{1} << 32) - 7);
         return Args{{hf}, hf + "/config.json"};
       },
       "'vocab_size' has an implausible value 4294967289"},
      {"HfRopeScaling",
       [](const std::string& d) {
         const std::string hf = Hf(d);
         EditConfig(hf, "rope_scaling", {{"type", "yarn"}, {"factor", 4.0}});
         return Args{{hf}, hf + "/config.json"};
       },
       "'rope_scaling' (type 'yarn') is not supported"},
      {"HfRopeScalingNestedTooDeepToPrint",
       [](const std::string& d) {
         const std::string hf = Hf(d);
         const std::vector<uint8_t> bytes = ReadFileBytes(hf + "/config.json");
         std::string text(bytes.begin(), bytes.end());
         const size_t at = text.find("\"rope_scaling\": null");
         EXPECT_NE(at, std::string::npos) << text;
         text.replace(at, 20,
                      "\"rope_scaling\": " + std::string(100000, '[') + std::string(100000, ']'));
         WriteFileText(hf + "/config.json", text);
         return Args{{hf}, hf + "/config.json"};
       },
       "'rope_scaling' (a JSON array) is not supported"},
      {"HfRopeScalingLlama3LacksAField",
       [](const std::string& d) {
         const std::string hf = Hf(d);
         EditConfig(hf, "rope_scaling",
                    {{"rope_type", "llama3"}, {"factor", 8.0}, {"high_freq_factor", 4.0},
                     {"original_max_position_embeddings", 8192}});
         return Args{{hf}, hf + "/config.json"};
       },
       "'rope_scaling' of type 'llama3' lacks 'low_freq_factor'"},
      {"HfRopeScalingLinearLacksItsFactor",
       [](const std::string& d) {
         const std::string hf = Hf(d);
         EditConfig(hf, "rope_scaling", {{"type", "linear"}});
         return Args{{hf}, hf + "/config.json"};
       },
       "'rope_scaling' of type 'linear' lacks 'factor'"},
      {"HfRopeScalingNegativeFactor",
       [](const std::string& d) {
         const std::string hf = Hf(d);
         EditConfig(hf, "rope_scaling", {{"type", "linear"}, {"factor", -2.0}});
         return Args{{hf}, hf + "/config.json"};
       },
       "'rope_scaling.factor' must be positive, got -2"},
      {"HfRopeScalingLlama3FrequencyFactorsInverted",
       [](const std::string& d) {
         const std::string hf = Hf(d);
         EditConfig(hf, "rope_scaling",
                    {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 4.0},
                     {"high_freq_factor", 1.0}, {"original_max_position_embeddings", 8192}});
         return Args{{hf}, hf + "/config.json"};
       },
       "'rope_scaling.high_freq_factor' 1 must exceed 'low_freq_factor' 4"},
      {"HfRopeScalingNamesNoType",
       [](const std::string& d) {
         const std::string hf = Hf(d);
         EditConfig(hf, "rope_scaling", {{"factor", 2.0}});
         return Args{{hf}, hf + "/config.json"};
       },
       "'rope_scaling' names no 'rope_type' (or 'type')"},
      {"HfRopeScalingFieldOfTheWrongType",
       [](const std::string& d) {
         const std::string hf = Hf(d);
         EditConfig(hf, "rope_scaling", {{"rope_type", "llama3"}, {"factor", "8"}});
         return Args{{hf}, hf + "/config.json"};
       },
       "'rope_scaling': 'factor' is not a number"},
      {"HfSlidingWindowNegative",
       [](const std::string& d) {
         const std::string hf = Hf(d, HfVariant::kMistral);
         EditConfig(hf, "sliding_window", -4);
         return Args{{hf}, hf + "/config.json"};
       },
       "'sliding_window' has an implausible value -4"},
      {"HfConfigIsAFifo",
       [](const std::string& d) {
         const std::string hf = Hf(d);
         fs::remove(hf + "/config.json");
         EXPECT_EQ(mkfifo((hf + "/config.json").c_str(), 0644), 0);
         return Args{{hf}, hf + "/config.json"};
       },
       "not a regular file (it is a FIFO)"},
      {"HfNoConfig",
       [](const std::string& d) {
         const std::string hf = Hf(d);
         fs::remove(hf + "/config.json");
         return Args{{hf}, hf};
       },
       "config.json is missing"},
      {"HfConfigNotJson",
       [](const std::string& d) {
         const std::string hf = Hf(d);
         WriteFileText(hf + "/config.json", "{\"architectures\": [\"LlamaForCausalLM\"],");
         return Args{{hf}, hf + "/config.json"};
       },
       "not valid JSON"},
      {"HfUnknownArchitecture",
       [](const std::string& d) {
         const std::string hf = Hf(d);
         EditConfig(hf, "architectures", {"GPTJForCausalLM"});
         return Args{{hf}, hf + "/config.json"};
       },
       "unknown architecture 'GPTJForCausalLM'"},
      {"HfUnsupportedActivation",
       [](const std::string& d) {
         const std::string hf = Hf(d);
         EditConfig(hf, "hidden_act", "tanh");
         return Args{{hf}, hf + "/config.json"};
       },
       "hidden_act 'tanh' is not supported"},
      {"HfWrongTypeInConfig",
       [](const std::string& d) {
         const std::string hf = Hf(d);
         EditConfig(hf, "hidden_size", "64");
         return Args{{hf}, hf + "/config.json"};
       },
       "'hidden_size' is not an integer"},
      {"HfTruncatedSafetensors",
       [](const std::string& d) {
         const std::string hf = Hf(d);
         const std::vector<uint8_t> b = ReadFileBytes(hf + "/model.safetensors");
         WriteFileBytes(hf + "/model.safetensors", Cut(b, b.size() - 1000));
         return Args{{hf}, hf + "/model.safetensors"};
       },
       "truncated"},
      {"HfSafetensorsWrongMagic",
       [](const std::string& d) {
         const std::string hf = Hf(d);
         std::vector<uint8_t> b = ReadFileBytes(hf + "/model.safetensors");
         std::fill(b.begin(), b.begin() + 16, 0xAB);
         WriteFileBytes(hf + "/model.safetensors", b);
         return Args{{hf}, hf + "/model.safetensors"};
       },
       "not a safetensors file"},
      {"HfUnsupportedDType",
       [](const std::string& d) {
         const std::string hf = Hf(d);
         EditWeight(hf, "model.layers.1.mlp.up_proj.weight", "F64", {96, 64});
         return Args{{hf}, hf + "/model.safetensors"};
       },
       "has dtype F64, which pinfer cannot import"},
      {"HfInconsistentShape",
       [](const std::string& d) {
         const std::string hf = Hf(d);
         EditWeight(hf, "model.layers.0.self_attn.k_proj.weight", "F32", {32, 64});
         return Args{{hf}, hf + "/model.safetensors"};
       },
       "inconsistent shape [32, 64]: 4 heads of 16 need 64 rows"},
      {"HfMissingTensor",
       [](const std::string& d) {
         const std::string hf = Hf(d);
         EditWeight(hf, "model.layers.1.mlp.gate_proj.weight", "", {});
         return Args{{hf}, hf};
       },
       "tensor 'blk.1.ffn_gate' is missing"},
      {"HfMissingShard",
       [](const std::string& d) {
         HfSpec spec;
         spec.shards = 2;
         WriteHfModel(d + "/hf", spec);
         fs::remove(d + "/hf/model-00002-of-00002.safetensors");
         return Args{{d + "/hf"}, d + "/hf/model-00002-of-00002.safetensors"};
       },
       ""},
      {"HfCorruptTokenizerModel",
       [](const std::string& d) {
         const std::string hf = Hf(d);
         WriteFileBytes(hf + "/tokenizer.model", std::vector<uint8_t>(300, 0x7F));
         return Args{{hf}, hf + "/tokenizer.model"};
       },
       "not a SentencePiece model"},
      {"HfNoTokenizer",
       [](const std::string& d) {
         const std::string hf = Hf(d);
         fs::remove(hf + "/tokenizer.model");
         return Args{{hf}, hf};
       },
       "has no tokenizer.model or tokenizer.json"},
      // ---- .pi given to pi-convert, and bad flags
      {"PiFileAsSource",
       [](const std::string& d) {
         std::vector<uint8_t> b(256, 0);
         std::memcpy(b.data(), kPiMagic, 8);
         const std::string p = Put(d + "/m.pi", b);
         return Args{{p}, p};
       },
       "is already a .pi file"},
      {"BadDTypeFlag",
       [](const std::string& d) {
         return Args{{RepoPath("models/stories260K/stories260K.gguf"), "--dtype", "q5_k"},
                     "--dtype: "};
       },
       "unknown weight dtype 'q5_k' (expected f32, f16, bf16, q8_0 or q4_0)"},
      {"NonWeightDTypeFlag",
       [](const std::string& d) {
         return Args{{RepoPath("models/stories260K/stories260K.gguf"), "--dtype", "i32"},
                     "--dtype: "};
       },
       "unknown weight dtype 'i32' (expected f32, f16, bf16, q8_0 or q4_0)"},
      {"BadActivationFlag",
       [](const std::string& d) {
         return Args{{RepoPath("models/stories260K/stories260K.gguf"), "--ffn-act", "swish"},
                     "--ffn-act: "};
       },
       "unknown activation"},
      {"BadNormActivationFlag",
       [](const std::string& d) {
         return Args{{RepoPath("models/stories260K/stories260K.gguf"), "--norm-act", "relu"},
                     "--norm-act: "};
       },
       "expected none or shifted_relu:S"},
  };
}

class BadSourceTest : public ::testing::TestWithParam<Case> {};

TEST_P(BadSourceTest, OneLineNamingFileAndReasonAndNoOutput) {
  const std::string in = ScratchDir("in"), out_dir = ScratchDir("out");
  const auto [args, named] = GetParam().setup(in);
  std::vector<std::string> full = args;
  full.insert(full.end(), {"-o", out_dir + "/model.pi", "-q"});
  const ToolResult r = RunTool("pi-convert", full);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "not one line: " << r.err;
  EXPECT_TRUE(r.err.starts_with("pi-convert: error: ")) << r.err;
  EXPECT_NE(r.err.find(named), std::string::npos) << "does not name " << named << ": " << r.err;
  EXPECT_NE(r.err.find(GetParam().reason), std::string::npos) << r.err;
  EXPECT_TRUE(fs::is_empty(out_dir)) << "a failed conversion left a file behind";
}

INSTANTIATE_TEST_SUITE_P(Table, BadSourceTest, ::testing::ValuesIn(Cases()),
                         [](const auto& info) { return std::string(info.param.name); });

// The output may not replace an input.
TEST(BadOutput, OverwritingTheSource) {
  const std::string dir = ScratchDir("x");
  const std::string source = dir + "/s.gguf";
  WriteFileBytes(source, ReadFileBytes(RepoPath("models/stories260K/stories260K.gguf")));
  const ToolResult r = RunTool("pi-convert", {source, "-o", source, "-q"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("would overwrite the source file " + source), std::string::npos) << r.err;
  EXPECT_EQ(ReadFileBytes(source), ReadFileBytes(RepoPath("models/stories260K/stories260K.gguf")));
}

// A file the user may not read says so, not "unrecognised model format".
TEST(BadSource, AnUnreadableFileSaysPermissionDenied) {
  if (geteuid() == 0) GTEST_SKIP() << "root may read every file: no permission to deny";
  const std::string p = ScratchDir("unreadable") + "/model.gguf";
  WriteFileBytes(p, ReadFileBytes(RepoPath("models/stories260K/stories260K.gguf")));
  ASSERT_EQ(chmod(p.c_str(), 0), 0);
  const ToolResult r = RunTool("pi-convert", {p, "-o", ScratchDir("unreadable_out") + "/m.pi"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "pi-convert: error: " + p + ": permission denied\n");
}

// A conversion that fails while writing (an output directory that does not exist) also leaves
// nothing and names the path.
TEST(BadOutput, MissingDirectory) {
  const std::string out = ScratchDir("x") + "/no/such/dir/model.pi";
  const ToolResult r =
      RunTool("pi-convert", {RepoPath("models/stories260K/stories260K.gguf"), "-o", out, "-q"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(out), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  EXPECT_FALSE(FileExists(out));
}

// ---- .pi files given to pi-inspect.

const std::string& GoodPi() {
  static const std::string path = [] {
    const std::string dir =
        (fs::path(::testing::TempDir()) / "pinfer_convert_test_goodpi").string();
    fs::create_directories(dir);
    const std::string p = dir + "/stories-q8.pi";
    const ToolResult r = RunTool("pi-convert", {RepoPath("models/stories260K/stories260K.gguf"),
                                                "--dtype", "q8_0", "-o", p, "-q"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return p;
  }();
  return path;
}

// Recomputes the header checksum after an edit of the header, metadata or index.
void FixHeaderChecksum(std::vector<uint8_t>& b) {
  PiHeader h;
  std::memcpy(&h, b.data(), sizeof(h));
  StreamingChecksum c;
  c.Update(b.data(), offsetof(PiHeader, header_checksum));
  c.Update(b.data() + h.metadata_offset, h.metadata_size + h.index_size);
  Poke<uint64_t>(b, offsetof(PiHeader, header_checksum), c.Digest());
}

// Offset of the first tensor's index entry fields after its name.
size_t FirstIndexEntry(const std::vector<uint8_t>& b) {
  PiHeader h;
  std::memcpy(&h, b.data(), sizeof(h));
  uint16_t name_length;
  std::memcpy(&name_length, b.data() + h.index_offset, 2);
  return h.index_offset + 2 + name_length;  // dtype u32, n_dims u32, dims...
}

struct PiCase {
  const char* name;
  std::function<std::vector<uint8_t>(std::vector<uint8_t>)> damage;
  bool verify;
  const char* reason;
};
void PrintTo(const PiCase& c, std::ostream* os) { *os << c.name; }

std::vector<PiCase> PiCases() {
  return {
      {"Truncated", [](auto b) { return Cut(b, b.size() - 100); }, false, "truncated"},
      {"TooShortForHeader", [](auto b) { return Cut(b, 64); }, false, "smaller than the 128-byte"},
      {"WrongMagic",
       [](auto b) {
         b[0] = 'X';
         return b;
       },
       false, "wrong magic"},
      {"NewerMajorVersion",
       [](auto b) {
         Poke<uint16_t>(b, 8, 2);
         return b;
       },
       false, "version 2.0 is not supported"},
      {"CorruptMetadata",
       [](auto b) {
         b[200] ^= 0x40;
         return b;
       },
       false, "header checksum mismatch"},
      {"UnsupportedDType",
       [](auto b) {
         Poke<uint32_t>(b, FirstIndexEntry(b), 9);
         FixHeaderChecksum(b);
         return b;
       },
       false, "unsupported dtype 9"},
      {"InconsistentShape",
       [](auto b) {
         Poke<uint64_t>(b, FirstIndexEntry(b) + 8, 999);  // dims[0]
         FixHeaderChecksum(b);
         return b;
       },
       false, "needs"},
      {"CorruptTensorData",
       [](auto b) {
         b[b.size() - 10] ^= 0x01;
         return b;
       },
       true, "checksum mismatch"},
  };
}

class BadPiTest : public ::testing::TestWithParam<PiCase> {};

TEST_P(BadPiTest, PiInspectSaysWhyInOneLine) {
  const std::string path = ScratchDir("pi") + "/bad.pi";
  WriteFileBytes(path, GetParam().damage(ReadFileBytes(GoodPi())));
  std::vector<std::string> args = {path, "-q"};
  if (GetParam().verify) args.push_back("--verify");
  const ToolResult r = RunTool("pi-inspect", args);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "not one line: " << r.err;
  EXPECT_TRUE(r.err.starts_with("pi-inspect: error: ")) << r.err;
  EXPECT_NE(r.err.find(path), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(GetParam().reason), std::string::npos) << r.err;
}

INSTANTIATE_TEST_SUITE_P(Table, BadPiTest, ::testing::ValuesIn(PiCases()),
                         [](const auto& info) { return std::string(info.param.name); });

// A FIFO would block open() forever; it is refused at once, by what it is.
TEST(BadPi, AFifoIsRefusedAtOnce) {
  const std::string fifo = ScratchDir("fifo") + "/model.pi";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  const ToolResult r = RunTool("pi-inspect", {fifo});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.err, "pi-inspect: error: " + fifo + ": not a regular file (it is a FIFO)\n");
}

// Damaged tensor data is found only by --verify: without it the structure is sound.
TEST(BadPi, DataDamageNeedsVerify) {
  const std::string path = ScratchDir("pi") + "/bad.pi";
  std::vector<uint8_t> b = ReadFileBytes(GoodPi());
  b[b.size() - 10] ^= 0x01;
  WriteFileBytes(path, b);
  EXPECT_EQ(RunTool("pi-inspect", {path}).exit_code, 0);
  const ToolResult r = RunTool("pi-inspect", {path, "--verify", "-q"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("1 of 48 tensors fail their checksum: output"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace pinfer::testing
