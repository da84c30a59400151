// Seeds of the conversion-source readers: llama2.c checkpoints (written here in both formats at a
// tiny size: the bundled real ones are 0.3 and 1 MB) and the bundled real tokenizer.bin files;
// HF config.json of every supported architecture and tokenizer.json, as the HF test fixture
// writes them (the keys and layout of the real repositories, small shapes).
#include <cstdio>
#include <cstdlib>
#include <random>

#include "format/byte_io.h"
#include "tests/convert/fuzz_corpus.h"
#include "tests/convert/hf_fixture.h"
#include "tests/convert/test_util.h"

namespace pinfer::testing {
namespace {

namespace fs = std::filesystem;

// dim 8, hidden 16, 2 layers, 2 heads, 1 KV head (head_dim 4), 16 tokens, 8 positions.
constexpr int32_t kDim = 8, kHidden = 16, kLayers = 2, kHeads = 2, kKvHeads = 1, kVocab = 16,
                  kSeqLen = 8;
constexpr int32_t kHeadDim = kDim / kHeads, kKvDim = kHeadDim * kKvHeads;

void PutF32(ByteWriter& w, std::mt19937& rng, int64_t n) {
  std::normal_distribution<float> dist(0.0f, 0.1f);
  for (int64_t i = 0; i < n; ++i) w.Put(dist(rng));
}

// llama2.c v0 (run.c's legacy f32 export); a negative vocab_size means a separate classifier.
std::vector<uint8_t> Llama2cV0(bool shared) {
  std::mt19937 rng(5);
  ByteWriter w;
  for (int32_t v : {kDim, kHidden, kLayers, kHeads, kKvHeads, shared ? kVocab : -kVocab, kSeqLen}) {
    w.Put(v);
  }
  PutF32(w, rng, int64_t{kVocab} * kDim);                 // token_embedding
  PutF32(w, rng, int64_t{kLayers} * kDim);                // rms_att
  PutF32(w, rng, int64_t{kLayers} * kDim * kDim);         // wq
  PutF32(w, rng, int64_t{kLayers} * kKvDim * kDim * 2);   // wk, wv
  PutF32(w, rng, int64_t{kLayers} * kDim * kDim);         // wo
  PutF32(w, rng, int64_t{kLayers} * kDim);                // rms_ffn
  PutF32(w, rng, int64_t{kLayers} * kHidden * kDim * 3);  // w1, w2, w3
  PutF32(w, rng, kDim);                                   // rms_final
  PutF32(w, rng, int64_t{kSeqLen} * kHeadDim);            // legacy RoPE tables
  if (!shared) PutF32(w, rng, int64_t{kVocab} * kDim);    // classifier
  return std::move(w.bytes());
}

// llama2.c v2 (runq.c's Q8_0 export): 256-byte header, f32 norms, then int8 groups + scales.
std::vector<uint8_t> Llama2cV2(int32_t group) {
  std::mt19937 rng(6);
  ByteWriter w;
  w.Put<uint32_t>(0x616b3432);
  w.Put<int32_t>(2);
  for (int32_t v : {kDim, kHidden, kLayers, kHeads, kKvHeads, kVocab, kSeqLen}) w.Put(v);
  w.Put<uint8_t>(1);  // shared classifier
  w.Put(group);
  w.PadTo(256);
  PutF32(w, rng, int64_t{kLayers} * kDim * 2 + kDim);  // rms_att, rms_ffn, rms_final
  auto q8 = [&](int64_t n) {
    for (int64_t i = 0; i < n; ++i) w.Put<int8_t>(static_cast<int8_t>(rng() % 255 - 127));
    for (int64_t g = 0; g < n / group; ++g) w.Put<float>(0.001f * static_cast<float>(g + 1));
  };
  q8(int64_t{kVocab} * kDim);
  for (int64_t n : {int64_t{kDim} * kDim, int64_t{kKvDim} * kDim, int64_t{kKvDim} * kDim,
                    int64_t{kDim} * kDim, int64_t{kHidden} * kDim, int64_t{kDim} * kHidden,
                    int64_t{kHidden} * kDim}) {
    for (int32_t l = 0; l < kLayers; ++l) q8(n);
  }
  return std::move(w.bytes());
}

// The llama2c_tokenizer_fuzzer input: its token count minus one (u16), then the file.
std::vector<uint8_t> WithCount(uint16_t count_minus_one, const std::vector<uint8_t>& file) {
  std::vector<uint8_t> out = {static_cast<uint8_t>(count_minus_one),
                              static_cast<uint8_t>(count_minus_one >> 8)};
  out.insert(out.end(), file.begin(), file.end());
  return out;
}

std::vector<uint8_t> Text(const std::string& s) { return {s.begin(), s.end()}; }

}  // namespace

void WriteSourceSeeds(const fs::path& corpus, const fs::path& tmp) {
  const fs::path ckpt = corpus / "llama2c_checkpoint";
  WriteSeed(ckpt / "v0_shared.bin", Llama2cV0(true));
  WriteSeed(ckpt / "v0_separate_classifier.bin", Llama2cV0(false));
  WriteSeed(ckpt / "v2_q80_group8.bin", Llama2cV2(8));
  const fs::path tok = corpus / "llama2c_tokenizer";
  WriteSeed(tok / "tok512.bin", WithCount(511, ReadFileBytes(RepoPath("models/stories260K/tok512.bin"))));
  WriteSeed(tok / "tok1024.bin",
            WithCount(1023, ReadFileBytes(RepoPath("models/relu-llama-260k/tok1024.bin"))));

  const std::pair<HfVariant, const char*> variants[] = {{HfVariant::kLlama2, "llama2"},
                                                        {HfVariant::kReluLlama, "relu_llama"},
                                                        {HfVariant::kProSparse, "prosparse"},
                                                        {HfVariant::kBamboo, "bamboo"},
                                                        {HfVariant::kMistral, "mistral"}};
  for (const auto& [variant, name] : variants) {
    HfSpec spec;
    spec.variant = variant;
    spec.tokenizer_model = false;
    spec.tokenizer_json = variant == HfVariant::kLlama2;
    spec.n_layers = 1;
    spec.n_kv_heads = variant == HfVariant::kMistral || variant == HfVariant::kBamboo ? 2 : 4;
    const fs::path dir = tmp / name;
    const HfModel model = WriteHfModel(dir.string(), spec);
    WriteSeed(corpus / "hf_config" / (std::string(name) + ".json"), Text(model.config.dump(2)));
    if (spec.tokenizer_json) {
      // Compact: the fixture's indented file is needlessly large for a seed.
      const std::string json = nlohmann::json::parse(
          ReadFileBytes((dir / "tokenizer.json").string())).dump();
      const std::vector<uint8_t> config_bytes =
          ReadFileBytes((dir / "tokenizer_config.json").string());
      const std::string config(config_bytes.begin(), config_bytes.end());
      WriteSeed(corpus / "hf_tokenizer" / "llama_bpe.json", Text(json));
      WriteSeed(corpus / "hf_tokenizer" / "llama_bpe_with_config.json",
                Text(json + std::string(1, '\0') + config));
    }
  }
}

}  // namespace pinfer::testing
