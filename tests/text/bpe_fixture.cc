#include "tests/text/bpe_fixture.h"

#include <cstring>
#include <map>

#include "absl/container/flat_hash_map.h"
#include "runtime/text/bpe_pre_tokenizer.h"
#include "runtime/text/byte_level_bpe.h"
#include "tests/convert/gguf_builder.h"
#include "tests/convert/test_util.h"

namespace pinfer::testing {
namespace {

// The families' special tokens, shaped like their real ones (Falcon's ">>...<<" markers, Llama 3's
// header tokens, Qwen 2's ChatML), and one user-defined token to check that path.
std::vector<BpeSpecialToken> SpecialsOf(const std::string& pre) {
  if (pre == "llama-bpe") {
    return {{"<|begin_of_text|>"},
            {"<|end_of_text|>"},
            {"<|start_header_id|>"},
            {"<|end_header_id|>"},
            {"<|eot_id|>"}};
  }
  if (pre == "qwen2") return {{"<|endoftext|>"}, {"<|im_start|>"}, {"<|im_end|>"}};
  if (pre == "falcon") return {{"<|endoftext|>"}, {">>INTRODUCTION<<"}, {"[user]", false}};
  if (pre == "starcoder") return {{"<|endoftext|>"}, {"<fim_prefix>"}};
  return {{"<|endoftext|>"}};
}

nlohmann::json ByteLevelStep(bool use_regex) {
  return {{"type", "ByteLevel"},
          {"add_prefix_space", false},
          {"trim_offsets", true},
          {"use_regex", use_regex}};
}

nlohmann::json SplitStep(const std::string& regex) {
  return {{"type", "Split"},
          {"pattern", {{"Regex", regex}}},
          {"behavior", "Isolated"},
          {"invert", false}};
}

// The pre_tokenizer of each family's published tokenizer.json.
nlohmann::json PreTokenizerJson(const std::string& pre) {
  auto sequence = [](std::vector<nlohmann::json> steps) {
    return nlohmann::json{{"type", "Sequence"}, {"pretokenizers", steps}};
  };
  if (pre == "falcon") {
    return sequence({{{"type", "Punctuation"}, {"behavior", "Contiguous"}},
                     ByteLevelStep(true),
                     {{"type", "Digits"}, {"individual_digits", false}},
                     SplitStep("[0-9][0-9][0-9]")});
  }
  if (pre == "llama-bpe") {
    return sequence({SplitStep("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
                               "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
                               "\\s+(?!\\S)|\\s+"),
                     ByteLevelStep(false)});
  }
  if (pre == "qwen2") {
    return sequence({SplitStep("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
                               "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
                               "\\s+(?!\\S)|\\s+"),
                     ByteLevelStep(false)});
  }
  if (pre == "starcoder") {
    return sequence({{{"type", "Digits"}, {"individual_digits", true}}, ByteLevelStep(true)});
  }
  return ByteLevelStep(true);  // gpt-2
}

}  // namespace

std::string CorpusExcerpt(const std::string& text, size_t limit) {
  if (text.size() <= limit) return text;
  const size_t newline = text.rfind('\n', limit - 1);
  return text.substr(0, newline == std::string::npos ? limit : newline + 1);
}

namespace {
std::string RepoText(const std::string& relative) {
  const std::vector<uint8_t> bytes = ReadFileBytes(RepoPath(relative));
  return std::string(bytes.begin(), bytes.end());
}
}  // namespace

std::string BpeTrainingCorpus() {
  return CorpusExcerpt(RepoText("tests/data/text/tinystories_valid_head.txt"), 120000) +
         CorpusExcerpt(RepoText("tests/data/text/wikitext2_test.tokens.txt"), 40000);
}

const std::vector<std::string>& BpeGoldenCorpora() {
  static const std::vector<std::string> corpora = {"tinystories_valid_head", "tinyshakespeare",
                                                   "wikitext2_test.tokens"};
  return corpora;
}

std::string BpeGoldenExcerpt(const std::string& name) {
  return CorpusExcerpt(RepoText("tests/data/text/" + name + ".txt"), 16000);
}

const std::vector<std::string>& BpeFixtureFamilies() {
  static const std::vector<std::string> families = {"gpt-2", "falcon", "llama-bpe", "qwen2",
                                                    "starcoder"};
  return families;
}

absl::StatusOr<BpeFixture> TrainBpeFixture(const std::string& pre, std::string_view corpus,
                                           int merges) {
  absl::StatusOr<BpePreTokenizer> pre_tokenizer = BpePreTokenizer::Create(pre);
  if (!pre_tokenizer.ok()) return pre_tokenizer.status();
  BpeFixture fixture;
  fixture.pre = pre;
  for (int b = 0; b < 256; ++b) fixture.pieces.push_back(ByteToBpeChar(static_cast<uint8_t>(b)));
  absl::flat_hash_map<std::string, int32_t> index;
  for (int b = 0; b < 256; ++b) index[fixture.pieces[b]] = b;

  // Distinct words with their counts, as symbol ids (bytes at first); std::map: a fixed order.
  std::map<std::string, int64_t> counts;
  for (const std::string& word : pre_tokenizer->Split(corpus)) ++counts[word];
  struct Word {
    std::vector<int32_t> symbols;
    int64_t count;
  };
  std::vector<Word> words;
  for (const auto& [text, count] : counts) {
    Word w{{}, count};
    for (char c : text) w.symbols.push_back(static_cast<uint8_t>(c));
    words.push_back(std::move(w));
  }

  for (int m = 0; m < merges; ++m) {
    absl::flat_hash_map<uint64_t, int64_t> pairs;
    for (const Word& w : words) {
      for (size_t i = 1; i < w.symbols.size(); ++i) {
        pairs[(uint64_t(uint32_t(w.symbols[i - 1])) << 32) | uint32_t(w.symbols[i])] += w.count;
      }
    }
    uint64_t best = 0;
    int64_t best_count = 0;
    for (const auto& [pair, count] : pairs) {
      auto spelling = [&](uint64_t p) {
        return std::pair{fixture.pieces[p >> 32], fixture.pieces[p & 0xffffffffu]};
      };
      if (count > best_count || (count == best_count && spelling(pair) < spelling(best))) {
        best = pair;
        best_count = count;
      }
    }
    if (best_count < 2) break;  // nothing left worth merging
    const int32_t left = static_cast<int32_t>(best >> 32);
    const int32_t right = static_cast<int32_t>(best & 0xffffffffu);
    const std::string merged = fixture.pieces[left] + fixture.pieces[right];
    fixture.merges.push_back(fixture.pieces[left] + " " + fixture.pieces[right]);
    auto [it, added] = index.try_emplace(merged, static_cast<int32_t>(fixture.pieces.size()));
    if (added) fixture.pieces.push_back(merged);
    const int32_t id = it->second;
    for (Word& w : words) {
      std::vector<int32_t> next;
      next.reserve(w.symbols.size());
      for (size_t i = 0; i < w.symbols.size(); ++i) {
        if (i + 1 < w.symbols.size() && w.symbols[i] == left && w.symbols[i + 1] == right) {
          next.push_back(id);
          ++i;
        } else {
          next.push_back(w.symbols[i]);
        }
      }
      w.symbols = std::move(next);
    }
  }

  // Llama 3's vocabulary has words no merge sequence reaches; its ignore_merges emits them whole.
  // One such piece here (" Hello": the merges split it) makes that rule observable.
  if (pre == "llama-bpe" &&
      index.try_emplace(ByteToBpeChar(' ') + "Hello", static_cast<int32_t>(fixture.pieces.size()))
          .second) {
    fixture.pieces.push_back(ByteToBpeChar(' ') + "Hello");
  }
  fixture.specials = SpecialsOf(pre);
  for (const BpeSpecialToken& special : fixture.specials) {
    if (!index.try_emplace(special.text, static_cast<int32_t>(fixture.pieces.size())).second) {
      return absl::InternalError("special token " + special.text + " was learnt as a merge");
    }
    fixture.pieces.push_back(special.text);
  }
  const int32_t first_special =
      static_cast<int32_t>(fixture.pieces.size() - fixture.specials.size());
  fixture.bos_id = first_special;  // <|endoftext|> or <|begin_of_text|>
  fixture.eos_id = pre == "llama-bpe" ? first_special + 1 : first_special;
  fixture.add_bos = pre == "llama-bpe";
  return fixture;
}

namespace {

void AddTokenizer(const BpeFixture& f, GgufBuilder& b) {
  b.AddString("tokenizer.ggml.model", "gpt2");
  b.AddString("tokenizer.ggml.pre", f.pre);
  b.AddStringArray("tokenizer.ggml.tokens", f.pieces);
  std::vector<int32_t> types(f.pieces.size(), 1);
  const size_t first_special = f.pieces.size() - f.specials.size();
  for (size_t i = 0; i < f.specials.size(); ++i) {
    types[first_special + i] = f.specials[i].control ? 3 : 4;
  }
  b.AddInt32Array("tokenizer.ggml.token_type", types);
  b.AddStringArray("tokenizer.ggml.merges", f.merges);
  b.AddUint32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(f.bos_id));
  b.AddUint32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(f.eos_id));
  if (f.add_bos) b.AddBool("tokenizer.ggml.add_bos_token", true);
}

}  // namespace

std::vector<uint8_t> BpeFixtureGguf(const BpeFixture& f) {
  GgufBuilder b;
  // The hparams llama.cpp's vocabulary-only load of a gpt2 file reads (as in its
  // models/ggml-vocab-gpt-2.gguf); there are no tensors.
  b.AddString("general.architecture", "gpt2");
  b.AddString("general.name", "pinfer-bpe-" + f.pre);
  b.AddUint32("gpt2.block_count", 1);
  b.AddUint32("gpt2.context_length", 128);
  b.AddUint32("gpt2.embedding_length", 8);
  b.AddUint32("gpt2.feed_forward_length", 32);
  b.AddUint32("gpt2.attention.head_count", 2);
  b.AddFloat32("gpt2.attention.layer_norm_epsilon", 1e-5f);
  AddTokenizer(f, b);
  return b.Build();
}

std::vector<uint8_t> BpeFixtureLlamaGguf(const BpeFixture& f) {
  constexpr uint32_t kDim = 16, kFf = 32, kHeads = 2;
  GgufBuilder b;
  b.AddString("general.architecture", "llama");
  b.AddString("general.name", "pinfer-bpe-llama-" + f.pre);
  b.AddUint32("llama.context_length", 64);
  b.AddUint32("llama.embedding_length", kDim);
  b.AddUint32("llama.block_count", 1);
  b.AddUint32("llama.feed_forward_length", kFf);
  b.AddUint32("llama.attention.head_count", kHeads);
  b.AddFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  AddTokenizer(f, b);
  uint32_t state = 12345;  // a fixed LCG: the same small weights every time
  auto tensor = [&](const std::string& name, std::vector<uint64_t> ne, bool ones) {
    uint64_t n = 1;
    for (uint64_t d : ne) n *= d;
    std::vector<uint8_t> data(n * 4);
    for (uint64_t i = 0; i < n; ++i) {
      state = state * 1664525u + 1013904223u;
      const float v = ones ? 1.0f : (static_cast<float>(state >> 8) / 16777216.0f - 0.5f) * 0.2f;
      std::memcpy(&data[i * 4], &v, 4);
    }
    b.AddTensor(name, std::move(ne), /*F32*/ 0, std::move(data));
  };
  const uint64_t vocab = f.pieces.size();
  tensor("token_embd.weight", {kDim, vocab}, false);
  tensor("output_norm.weight", {kDim}, true);
  tensor("blk.0.attn_norm.weight", {kDim}, true);
  for (const char* w : {"attn_q", "attn_k", "attn_v", "attn_output"}) {
    tensor(std::string("blk.0.") + w + ".weight", {kDim, kDim}, false);
  }
  tensor("blk.0.ffn_norm.weight", {kDim}, true);
  tensor("blk.0.ffn_gate.weight", {kDim, kFf}, false);
  tensor("blk.0.ffn_up.weight", {kDim, kFf}, false);
  tensor("blk.0.ffn_down.weight", {kFf, kDim}, false);
  return b.Build();
}

nlohmann::json BpeFixtureTokenizerJson(const BpeFixture& f) {
  const size_t first_special = f.pieces.size() - f.specials.size();
  nlohmann::json vocab = nlohmann::json::object();
  for (size_t i = 0; i < first_special; ++i) vocab[f.pieces[i]] = i;
  nlohmann::json added = nlohmann::json::array();
  for (size_t i = 0; i < f.specials.size(); ++i) {
    added.push_back({{"id", first_special + i},
                     {"content", f.specials[i].text},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", !f.specials[i].control},
                     {"special", f.specials[i].control}});
  }
  nlohmann::json post = ByteLevelStep(true);
  if (f.add_bos) {  // Llama 3: a TemplateProcessing that puts <|begin_of_text|> first
    const std::string& bos = f.pieces[f.bos_id];
    post = {
        {"type", "Sequence"},
        {"processors",
         {ByteLevelStep(true),
          {{"type", "TemplateProcessing"},
           {"single",
            {{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}},
             {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
           {"special_tokens", {{bos, {{"id", bos}, {"ids", {f.bos_id}}, {"tokens", {bos}}}}}}}}}};
  }
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer", nullptr},
          {"pre_tokenizer", PreTokenizerJson(f.pre)},
          {"post_processor", post},
          {"decoder", ByteLevelStep(true)},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr},
            {"fuse_unk", false},
            {"byte_fallback", false},
            {"ignore_merges", f.pre == "llama-bpe"},
            {"vocab", vocab},
            {"merges", f.merges}}}};
}

}  // namespace pinfer::testing
