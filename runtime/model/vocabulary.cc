#include "runtime/model/vocabulary.h"

#include <unordered_set>

#include "absl/strings/str_cat.h"

namespace pinfer {
namespace {

// The expressions of llama.cpp's llm_tokenizer_bpe (src/llama-vocab.cpp at c392e5094), by
// family. Llama 3's and Qwen 2's are llama.cpp's adaptation of the tokenizer.json pattern
// ((?i:'s|...) spelled out case by case), which matches the same text.
constexpr std::string_view kGpt2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
constexpr std::string_view kLlama3 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr std::string_view kQwen2 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

constexpr BpePreTokenizerFamily kDefaultFamily = {
    {"[\\p{P}\\$\\+<=>\\^~\\|]+", kGpt2, "\\p{N}+", "[0-9][0-9][0-9]"}};
constexpr BpePreTokenizerFamily kGpt2Family = {{kGpt2}};
constexpr BpePreTokenizerFamily kFalconFamily = {
    {"[\\p{P}\\$\\+<=>\\^~\\|`]+", kGpt2, "[0-9][0-9][0-9]"}};
constexpr BpePreTokenizerFamily kStarcoderFamily = {{"\\p{N}", kGpt2}};
constexpr BpePreTokenizerFamily kLlama3Family = {{kLlama3},
                                                 /*ignore_merges=*/true,
                                                 /*add_bos=*/true};
constexpr BpePreTokenizerFamily kDbrxFamily = {{kLlama3}};
constexpr BpePreTokenizerFamily kQwen2Family = {{kQwen2}};

struct NamedFamily {
  std::string_view name;
  const BpePreTokenizerFamily* family;
};
// llama.cpp's names (llama_vocab::impl::load); families whose expressions hold non-ASCII ranges
// (deepseek, chatglm, tekken, bloom, ...) are not carried. One name a line:
// clang-format off
constexpr NamedFamily kFamilies[] = {
    {"", &kDefaultFamily},
    {"default", &kDefaultFamily},
    {"gpt-2", &kGpt2Family},
    {"phi-2", &kGpt2Family},
    {"roberta-bpe", &kGpt2Family},
    {"mpt", &kGpt2Family},
    {"olmo", &kGpt2Family},
    {"jais", &kGpt2Family},
    {"falcon", &kFalconFamily},
    {"starcoder", &kStarcoderFamily},
    {"refact", &kStarcoderFamily},
    {"command-r", &kStarcoderFamily},
    {"smollm", &kStarcoderFamily},
    {"codeshell", &kStarcoderFamily},
    {"exaone", &kStarcoderFamily},
    {"minerva-7b", &kStarcoderFamily},
    {"llama3", &kLlama3Family},
    {"llama-v3", &kLlama3Family},
    {"llama-bpe", &kLlama3Family},
    {"falcon3", &kLlama3Family},
    {"dbrx", &kDbrxFamily},
    {"smaug-bpe", &kDbrxFamily},
    {"qwen2", &kQwen2Family},
    {"deepseek-r1-qwen", &kQwen2Family},
    {"megrez", &kQwen2Family},
    {"stablelm2", &kQwen2Family},
};
// clang-format on

}  // namespace

const BpePreTokenizerFamily* FindBpePreTokenizer(std::string_view name) {
  for (const NamedFamily& f : kFamilies) {
    if (f.name == name) return f.family;
  }
  return nullptr;
}

absl::Status Vocabulary::Validate() const {
  if (model != "llama" && model != "gpt2") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown tokenizer model '", model, "' (known: llama, gpt2)"));
  }
  if (byte_level() && merges.empty()) {
    return absl::InvalidArgumentError("the byte-level BPE tokenizer has no merges");
  }
  if (byte_level() && FindBpePreTokenizer(pre_tokenizer) == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown pre-tokenizer '", pre_tokenizer,
                     "' (known: gpt-2, falcon, llama-bpe, qwen2, starcoder, ... as llama.cpp "
                     "names them)"));
  }
  if (!byte_level() && (!merges.empty() || !pre_tokenizer.empty())) {
    return absl::InvalidArgumentError(
        "the SentencePiece tokenizer has merges or a pre-tokenizer (byte-level BPE fields)");
  }
  if (pieces.empty()) return absl::InvalidArgumentError("the tokenizer has no tokens");
  if (scores.size() != pieces.size() || types.size() != pieces.size()) {
    return absl::InvalidArgumentError(absl::StrCat("the tokenizer has ", pieces.size(),
                                                   " pieces but ", scores.size(), " scores and ",
                                                   types.size(), " types"));
  }
  const int32_t n = static_cast<int32_t>(pieces.size());
  const bool unk_optional = byte_level();  // byte-level BPE needs no <unk>
  for (int32_t id : {bos_id, eos_id, unk_optional && unk_id == -1 ? bos_id : unk_id}) {
    if (id < 0 || id >= n) {
      return absl::InvalidArgumentError(
          absl::StrCat("special token id ", id, " is outside the ", n, "-token vocabulary"));
    }
  }
  if (pad_id < -1 || pad_id >= n) {
    return absl::InvalidArgumentError(
        absl::StrCat("pad id ", pad_id, " is outside the vocabulary"));
  }
  for (int32_t t : types) {
    if (t < 1 || t > 6) return absl::InvalidArgumentError(absl::StrCat("unknown token type ", t));
  }
  if (byte_level()) return ValidateMerges();
  return absl::OkStatus();
}

absl::Status Vocabulary::ValidateMerges() const {
  const std::unordered_set<std::string_view> known(pieces.begin(), pieces.end());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string& merge = merges[rank];
    const size_t space = merge.find(' ', 1);  // where llama.cpp splits a merge
    if (space == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("merge ", rank, " '", merge, "' is not two tokens separated by a space"));
    }
    const std::string left = merge.substr(0, space);
    const std::string right = merge.substr(space + 1);
    for (const std::string& part : {left, right}) {
      if (!known.contains(part)) {
        return absl::InvalidArgumentError(absl::StrCat("merge ", rank, " '", merge, "' refers to '",
                                                       part, "', which is not a token"));
      }
    }
    if (!known.contains(left + right)) {
      return absl::InvalidArgumentError(absl::StrCat("merge ", rank, " '", merge, "' makes '", left,
                                                     right, "', which is not a token"));
    }
  }
  return absl::OkStatus();
}

void Vocabulary::ToMetadata(Metadata& m) const {
  m.SetString("tokenizer.model", model);
  m.SetStringArray("tokenizer.tokens", pieces);
  m.SetFloatArray("tokenizer.scores", scores);
  m.SetIntArray("tokenizer.token_type", std::vector<int64_t>(types.begin(), types.end()));
  m.SetInt("tokenizer.bos_id", bos_id);
  m.SetInt("tokenizer.eos_id", eos_id);
  m.SetInt("tokenizer.unk_id", unk_id);
  m.SetInt("tokenizer.pad_id", pad_id);
  m.SetBool("tokenizer.add_bos", add_bos);
  m.SetBool("tokenizer.add_space_prefix", add_space_prefix);
  if (!chat_template.empty()) m.SetString("tokenizer.chat_template", chat_template);
  if (byte_level()) {
    m.SetStringArray("tokenizer.merges", merges);
    m.SetString("tokenizer.pre", pre_tokenizer);
  }
}

absl::StatusOr<Vocabulary> Vocabulary::FromMetadata(const Metadata& m) {
  Vocabulary v;
  absl::StatusOr<std::string> model = m.GetString("tokenizer.model");
  if (!model.ok()) {
    return absl::NotFoundError(
        "the model has no tokenizer (metadata 'tokenizer.model' is missing)");
  }
  v.model = *model;
  auto pieces = m.GetStringArray("tokenizer.tokens");
  if (!pieces.ok()) return pieces.status();
  v.pieces = *std::move(pieces);
  auto scores = m.GetFloatArray("tokenizer.scores");
  if (!scores.ok()) return scores.status();
  v.scores = *std::move(scores);
  auto types = m.GetIntArray("tokenizer.token_type");
  if (!types.ok()) return types.status();
  v.types.assign(types->begin(), types->end());
  const struct {
    const char* key;
    int32_t* field;
  } ids[] = {{"tokenizer.bos_id", &v.bos_id},
             {"tokenizer.eos_id", &v.eos_id},
             {"tokenizer.unk_id", &v.unk_id},
             {"tokenizer.pad_id", &v.pad_id}};
  for (const auto& id : ids) {
    absl::StatusOr<int64_t> value = m.GetInt(id.key);
    if (!value.ok()) return value.status();
    // Checked before narrowing: 2^32 + 1 must not pass as token 1.
    if (*value < -1 || *value >= static_cast<int64_t>(v.pieces.size())) {
      return absl::InvalidArgumentError(absl::StrCat("'", id.key, "' ", *value, " is outside the ",
                                                     v.pieces.size(), "-token vocabulary"));
    }
    *id.field = static_cast<int32_t>(*value);
  }
  v.add_bos = m.GetBool("tokenizer.add_bos").value_or(true);
  v.add_space_prefix = m.GetBool("tokenizer.add_space_prefix").value_or(true);
  v.chat_template = m.GetString("tokenizer.chat_template").value_or("");
  if (v.byte_level()) {
    auto merges = m.GetStringArray("tokenizer.merges");
    if (!merges.ok()) return merges.status();
    v.merges = *std::move(merges);
    auto pre = m.GetString("tokenizer.pre");
    if (!pre.ok()) return pre.status();
    v.pre_tokenizer = *std::move(pre);
  }
  if (absl::Status s = v.Validate(); !s.ok()) return s;
  return v;
}

}  // namespace pinfer
