// Writes a synthetic llama model (random weights, real file layout) as a llama2.c v0 checkpoint, a
// GGUF or an HF safetensors directory, to measure pi-convert on models of realistic size without
// downloading one. Not used by the tests. Usage:
//   make_synthetic_model FORMAT OUT DIM N_FF LAYERS HEADS VOCAB [GGUF_TYPE|HF_DTYPE]
//   FORMAT: llama2c | gguf | hf;  GGUF_TYPE: 0 F32, 1 F16, 8 Q8_0;  HF_DTYPE: F32, F16, BF16
// llama2c needs a tokenizer with VOCAB tokens at conversion (tests/data/tokenizers has 32000).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "format/quant.h"
#include "tests/convert/gguf_builder.h"
#include "tests/convert/hf_fixture.h"
#include "tests/convert/test_util.h"

namespace {

uint64_t state = 0x9E3779B97F4A7C15ull;
// Roughly normal, cheap: the sum of four uniform draws, scaled.
float Next() {
  float sum = 0;
  for (int i = 0; i < 4; ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    sum += static_cast<float>(state >> 40) / static_cast<float>(1 << 24) - 0.5f;
  }
  return sum * 0.04f;
}

std::vector<float> Values(uint64_t n, float offset = 0) {
  std::vector<float> v(n);
  for (float& x : v) x = Next() + offset;
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace pinfer;
  using namespace pinfer::testing;
  if (argc < 8) {
    std::fprintf(
        stderr,
        "usage: make_synthetic_model llama2c|gguf|hf OUT DIM N_FF LAYERS HEADS VOCAB [TYPE]\n");
    return 2;
  }
  const std::string format = argv[1], out = argv[2];
  const uint64_t d = std::atoll(argv[3]), ff = std::atoll(argv[4]), layers = std::atoll(argv[5]),
                 heads = std::atoll(argv[6]), vocab = std::atoll(argv[7]);
  const std::string type = argc > 8 ? argv[8] : "";
  const uint64_t seq = 2048, hd = d / heads;
  if (format == "llama2c") {
    std::ofstream f(out, std::ios::binary);
    const int32_t header[7] = {int32_t(d),     int32_t(ff),    int32_t(layers), int32_t(heads),
                               int32_t(heads), int32_t(vocab), int32_t(seq)};
    f.write(reinterpret_cast<const char*>(header), sizeof(header));
    auto put = [&](uint64_t n, float offset = 0) {
      for (uint64_t done = 0; done < n; done += 1 << 20) {
        std::vector<float> v = Values(std::min<uint64_t>(1 << 20, n - done), offset);
        f.write(reinterpret_cast<const char*>(v.data()), v.size() * 4);
      }
    };
    put(vocab * d);
    put(layers * d, 1);
    for (int i = 0; i < 4; ++i) put(layers * d * d);
    put(layers * d, 1);
    for (int i = 0; i < 3; ++i) put(layers * ff * d);
    put(d, 1);
    put(seq * hd);  // legacy RoPE tables
    return 0;
  }
  if (format == "gguf") {
    const uint32_t ggml = type.empty() ? 1 : std::atoi(type.c_str());
    const DType dtype = ggml == 0 ? DType::kF32 : ggml == 8 ? DType::kQ8_0 : DType::kF16;
    GgufBuilder b;
    b.AddString("general.architecture", "llama");
    b.AddUint32("llama.context_length", seq);
    b.AddUint32("llama.embedding_length", d);
    b.AddUint32("llama.feed_forward_length", ff);
    b.AddUint32("llama.block_count", layers);
    b.AddUint32("llama.attention.head_count", heads);
    b.AddUint32("llama.attention.head_count_kv", heads);
    b.AddFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
    for (uint64_t i = 3; i < vocab; ++i) tokens.push_back(absl::StrCat("t", i));
    b.AddString("tokenizer.ggml.model", "llama");
    b.AddStringArray("tokenizer.ggml.tokens", tokens);
    b.AddFloat32Array("tokenizer.ggml.scores", std::vector<float>(vocab, 0.0f));
    auto add = [&](const std::string& name, uint64_t rows, uint64_t cols, bool vector) {
      const DType t = vector ? DType::kF32 : dtype;
      const uint64_t row_bytes = *RowBytes(t, cols);
      std::vector<uint8_t> data(row_bytes * rows);
      for (uint64_t r = 0; r < rows; ++r) {
        std::vector<float> v = Values(cols, vector ? 1.0f : 0.0f);
        (void)EncodeRow(v.data(), cols, t, data.data() + r * row_bytes);
      }
      b.AddTensor(name, vector ? std::vector<uint64_t>{cols} : std::vector<uint64_t>{cols, rows},
                  vector ? 0 : ggml, std::move(data));
    };
    add("token_embd.weight", vocab, d, false);
    add("output_norm.weight", 1, d, true);
    add("output.weight", vocab, d, false);
    for (uint64_t l = 0; l < layers; ++l) {
      const std::string p = absl::StrCat("blk.", l, ".");
      add(p + "attn_norm.weight", 1, d, true);
      for (const char* n : {"attn_q", "attn_k", "attn_v", "attn_output"})
        add(p + n + ".weight", d, d, false);
      add(p + "ffn_norm.weight", 1, d, true);
      add(p + "ffn_gate.weight", ff, d, false);
      add(p + "ffn_up.weight", ff, d, false);
      add(p + "ffn_down.weight", d, ff, false);
    }
    WriteFileBytes(out, b.Build());
    return 0;
  }
  if (format == "hf") {
    const std::string dtype = type.empty() ? "BF16" : type;
    std::filesystem::create_directories(out);
    std::vector<RawTensor> tensors;
    auto add = [&](const std::string& name, std::vector<uint64_t> shape, float offset) {
      uint64_t n = 1;
      for (uint64_t s : shape) n *= s;
      tensors.push_back({name, dtype, shape, EncodeAs(dtype, Values(n, offset))});
    };
    add("model.embed_tokens.weight", {vocab, d}, 0);
    add("model.norm.weight", {d}, 1);
    add("lm_head.weight", {vocab, d}, 0);
    for (uint64_t l = 0; l < layers; ++l) {
      const std::string p = absl::StrCat("model.layers.", l, ".");
      add(p + "input_layernorm.weight", {d}, 1);
      for (const char* n : {"q_proj", "k_proj", "v_proj", "o_proj"})
        add(p + "self_attn." + n + ".weight", {d, d}, 0);
      add(p + "post_attention_layernorm.weight", {d}, 1);
      add(p + "mlp.gate_proj.weight", {ff, d}, 0);
      add(p + "mlp.up_proj.weight", {ff, d}, 0);
      add(p + "mlp.down_proj.weight", {d, ff}, 0);
    }
    WriteSafetensors(out + "/model.safetensors", tensors);
    WriteFileText(out + "/config.json", nlohmann::json{{"architectures", {"LlamaForCausalLM"}},
                                                       {"hidden_act", "relu"},
                                                       {"hidden_size", d},
                                                       {"intermediate_size", ff},
                                                       {"num_hidden_layers", layers},
                                                       {"num_attention_heads", heads},
                                                       {"num_key_value_heads", heads},
                                                       {"vocab_size", vocab},
                                                       {"max_position_embeddings", seq},
                                                       {"rms_norm_eps", 1e-5}}
                                            .dump(2));
    return 0;
  }
  std::fprintf(stderr, "unknown format %s\n", format.c_str());
  return 2;
}
