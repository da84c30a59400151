// Seeds of the raw-byte parsers: GGUF, safetensors and .pi.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

#include "format/pi_writer.h"
#include "format/quant.h"
#include "tests/convert/fuzz_corpus.h"
#include "tests/convert/gguf_builder.h"
#include "tests/convert/hf_fixture.h"
#include "tests/convert/test_util.h"
#include "tools/convert/converter.h"
#include "tools/convert/source_reader.h"

namespace pinfer::testing {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> Q8(uint64_t rows, uint64_t cols, std::mt19937& rng) {
  std::normal_distribution<float> dist;
  std::vector<float> x(rows * cols);
  for (float& v : x) v = dist(rng) * 0.05f;
  std::vector<uint8_t> out(rows * cols / 32 * 34);
  QuantizeRowQ8_0(x.data(), reinterpret_cast<BlockQ8_0*>(out.data()), x.size());
  return out;
}

// Every metadata value type, PowerInfer's magic, version 2, a custom alignment.
std::vector<uint8_t> AllTypesGguf() {
  GgufBuilder b;
  b.set_magic("PWRI");
  b.set_version(2);
  b.AddUint32("general.alignment", 64);
  b.AddRaw("u8", 0, {7});
  b.AddRaw("i8", 1, {0xF9});
  b.AddRaw("u16", 2, {1, 2});
  b.AddRaw("i16", 3, {0xFF, 0xFF});
  b.AddInt32("i32", -5);
  b.AddRaw("u64", 10, {1, 0, 0, 0, 0, 0, 0, 0});
  b.AddRaw("i64", 11, {0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF});
  b.AddRaw("f64", 12, {0, 0, 0, 0, 0, 0, 0xF0, 0x3F});
  b.AddBool("bool", true);
  b.AddString("str", "text");
  b.AddRaw("u8_array", 9, {0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 2});
  b.AddRaw("bool_array", 9, {7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1});
  b.AddFloat32Array("f32_array", {1.5f, -2.5f});
  b.AddStringArray("str_array", {"x", ""});
  b.AddTensor("q4", {32, 2}, 2, std::vector<uint8_t>(36, 0x88));
  b.AddTensor("f16", {3}, 1, std::vector<uint8_t>(6, 0x3C));
  b.AddTensor("bf16", {2, 1, 1, 2}, 30, std::vector<uint8_t>(8, 0x3F));
  return b.Build(64);
}

// pi-convert's output for the tiny GGUF, at `dtype`.
std::vector<uint8_t> ConvertTiny(const fs::path& tmp, const std::vector<uint8_t>& gguf,
                                 DType dtype) {
  WriteFileBytes((tmp / "tiny.gguf").string(), gguf);
  absl::StatusOr<SourceModel> model = ReadSource((tmp / "tiny.gguf").string(), {});
  ConvertOptions options;
  options.dtype = dtype;
  options.progress = false;
  options.command_line = "make_fuzz_corpus";
  if (!model.ok() || !ConvertModel(*model, (tmp / "tiny.pi").string(), options).ok()) {
    std::fprintf(stderr, "make_fuzz_corpus: converting the tiny GGUF failed\n");
    std::exit(1);
  }
  return ReadFileBytes((tmp / "tiny.pi").string());
}

}  // namespace

void WriteSeed(const fs::path& path, const std::vector<uint8_t>& bytes) {
  fs::create_directories(path.parent_path());
  WriteFileBytes(path.string(), bytes);
  std::printf("%s (%zu bytes)\n", path.c_str(), bytes.size());
}

std::vector<uint8_t> TinyLlamaGguf(int n_layers, int n_ff, bool output) {
  std::mt19937 rng(1);
  const uint64_t ff = static_cast<uint64_t>(n_ff);
  GgufBuilder b;
  b.AddString("general.architecture", "llama");
  b.AddString("general.name", "tiny");
  b.AddUint32("llama.context_length", 64);
  b.AddUint32("llama.embedding_length", 32);
  b.AddUint32("llama.feed_forward_length", static_cast<uint32_t>(n_ff));
  b.AddUint32("llama.block_count", static_cast<uint32_t>(n_layers));
  b.AddUint32("llama.attention.head_count", 2);
  b.AddUint32("llama.attention.head_count_kv", 2);
  b.AddUint32("llama.rope.dimension_count", 16);
  b.AddFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  b.AddFloat32("llama.rope.freq_base", 10000.0f);
  b.AddString("tokenizer.ggml.model", "llama");
  AddTinyLlamaVocabulary(b);
  b.AddUint32("tokenizer.ggml.unknown_token_id", 0);
  b.AddUint32("tokenizer.ggml.padding_token_id", 0xFFFFFFFFu);
  b.AddBool("tokenizer.ggml.add_bos_token", true);
  b.AddString("tokenizer.chat_template", "{{ bos_token }}{{ messages[0]['content'] }}");
  std::vector<uint8_t> ones(32 * 4);
  const float one = 1.0f;
  for (int i = 0; i < 32; ++i) std::memcpy(ones.data() + 4 * i, &one, 4);
  b.AddTensor("token_embd.weight", {32, 8}, 8, Q8(8, 32, rng));
  b.AddTensor("output_norm.weight", {32}, 0, ones);
  for (int l = 0; l < n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    for (const char* n : {"attn_q", "attn_k", "attn_v", "attn_output"}) {
      b.AddTensor(p + n + ".weight", {32, 32}, 8, Q8(32, 32, rng));
    }
    b.AddTensor(p + "ffn_gate.weight", {32, ff}, 8, Q8(ff, 32, rng));
    b.AddTensor(p + "ffn_up.weight", {32, ff}, 8, Q8(ff, 32, rng));
    b.AddTensor(p + "ffn_down.weight", {ff, 32}, 8, Q8(32, ff, rng));
    b.AddTensor(p + "attn_norm.weight", {32}, 0, ones);
    b.AddTensor(p + "ffn_norm.weight", {32}, 0, ones);
  }
  if (output) b.AddTensor("output.weight", {32, 8}, 8, Q8(8, 32, rng));
  return b.Build();
}

void WriteFormatSeeds(const fs::path& corpus, const fs::path& tmp) {
  WriteSeed(corpus / "gguf" / "tiny_llama_q8_0.gguf", TinyLlamaGguf());
  WriteSeed(corpus / "gguf" / "all_value_types_pwri_v2.gguf", AllTypesGguf());

  std::vector<RawTensor> tensors = {
      {"model.embed_tokens.weight", "BF16", {4, 8}, EncodeAs("BF16", std::vector<float>(32, 0.5f))},
      {"model.norm.weight", "F32", {8}, EncodeAs("F32", std::vector<float>(8, 1.0f))},
      {"lm_head.weight", "F16", {4, 8}, EncodeAs("F16", std::vector<float>(32, -0.25f))},
      {"step", "I64", {}, std::vector<uint8_t>(8, 0)},
      {"empty", "U8", {0}, {}},
  };
  WriteSafetensors((tmp / "m.safetensors").string(), tensors);
  WriteSeed(corpus / "safetensors" / "small.safetensors",
            ReadFileBytes((tmp / "m.safetensors").string()));

  // A model .pi converted from the tiny GGUF, at q4_0 (f32 norms, quantized matrices, tokenizer);
  // the model loader starts from it too.
  const std::vector<uint8_t> tiny = ConvertTiny(tmp, TinyLlamaGguf(), DType::kQ4_0);
  WriteSeed(corpus / "pi_file" / "tiny_model_q4_0.pi", tiny);
  WriteSeed(corpus / "model" / "tiny_model_q4_0.pi", tiny);
  // Two layers, a separate classifier, f16 matrices: the other binding paths.
  WriteSeed(corpus / "model" / "tiny_untied_f16.pi",
            ConvertTiny(tmp, TinyLlamaGguf(2, 32, true), DType::kF16));

  // A non-model artifact with integer tensors and every metadata type.
  Metadata metadata;
  metadata.SetString("model.digest", "0123456789abcdef");
  metadata.SetInt("profile.tokens", 1000);
  metadata.SetFloat("profile.threshold", 0.5);
  metadata.SetBool("profile.calibrated", true);
  metadata.SetIntArray("profile.layers", {0, 1, 2});
  metadata.SetFloatArray("profile.rates", {0.1f, 0.2f});
  metadata.SetStringArray("profile.names", {"a", "b"});
  const std::vector<int32_t> counts = {1, 2, 3, 4, 5, 6};
  const std::vector<uint8_t> flags = {1, 0, 1};
  if (!WritePiFile((tmp / "profile.pi").string(), ArtifactKind::kProfile, std::move(metadata),
                   {MakeTensor("counts", {2, 3}, std::span<const int32_t>(counts)),
                    MakeTensor("flags", {3}, std::span<const uint8_t>(flags))})
           .ok()) {
    std::exit(1);
  }
  WriteSeed(corpus / "pi_file" / "profile_i32_u8.pi", ReadFileBytes((tmp / "profile.pi").string()));
}

}  // namespace pinfer::testing
