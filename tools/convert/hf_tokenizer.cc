#include "tools/convert/hf_tokenizer.h"

#include <filesystem>
#include <limits>
#include <map>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "format/file_access.h"
#include "tools/convert/json_fields.h"
#include "tools/convert/sentencepiece_model.h"

namespace pinfer {
namespace {

namespace fs = std::filesystem;

bool IsBytePiece(const std::string& piece) {
  return piece.size() == 6 && piece.starts_with("<0x") && piece.back() == '>' &&
         std::isxdigit(static_cast<unsigned char>(piece[3])) &&
         std::isxdigit(static_cast<unsigned char>(piece[4]));
}

// The "type" of a tokenizers component, or of any member of a Sequence, equals `type`. Walked
// with an explicit stack, as PrependsSpace is: Sequences nest as deep as the file says, and a
// recursion over a few hundred KB of nesting overflows the stack.
bool UsesComponent(const nlohmann::json& root, const std::string& type) {
  std::vector<const nlohmann::json*> stack = {&root};
  while (!stack.empty()) {
    const nlohmann::json& component = *stack.back();
    stack.pop_back();
    if (!component.is_object()) continue;
    auto t = component.find("type");
    if (t != component.end() && t->is_string() && t->get<std::string>() == type) return true;
    for (const char* list : {"normalizers", "pretokenizers", "decoders"}) {
      auto members = component.find(list);
      if (members == component.end() || !members->is_array()) continue;
      for (const nlohmann::json& m : *members) stack.push_back(&m);
    }
  }
  return false;
}

// SentencePiece's add_dummy_prefix, as tokenizers spells it: a Prepend("▁") normalizer
// (Llama-2's tokenizer.json) or a Metaspace pre-tokenizer that prepends (newer files).
bool PrependsSpace(const nlohmann::json& root) {
  const std::string kSpace = "\xe2\x96\x81";
  std::vector<const nlohmann::json*> stack;
  for (const char* part : {"normalizer", "pre_tokenizer"}) {
    auto it = root.find(part);
    if (it != root.end()) stack.push_back(&*it);
  }
  while (!stack.empty()) {
    const nlohmann::json& c = *stack.back();
    stack.pop_back();
    if (!c.is_object()) continue;
    auto type = c.find("type");
    if (type != c.end() && type->is_string()) {
      const std::string t = type->get<std::string>();
      auto prepend = c.find("prepend");
      if (t == "Prepend" && prepend != c.end() && prepend->is_string() &&
          prepend->get<std::string>() == kSpace) {
        return true;
      }
      if (t == "Metaspace") {
        auto scheme = c.find("prepend_scheme");
        if (scheme != c.end() && scheme->is_string()) return scheme->get<std::string>() != "never";
        auto add = c.find("add_prefix_space");
        return add == c.end() || !add->is_boolean() || add->get<bool>();
      }
    }
    for (const char* list : {"normalizers", "pretokenizers"}) {
      auto members = c.find(list);
      if (members == c.end() || !members->is_array()) continue;
      for (const nlohmann::json& m : *members) stack.push_back(&m);
    }
  }
  return false;
}

// A token string from tokenizer_config.json: "<s>" or {"content": "<s>", ...}.
std::optional<std::string> TokenContent(const nlohmann::json* v) {
  if (v == nullptr) return std::nullopt;
  if (v->is_string()) return v->get<std::string>();
  if (v->is_object()) {
    auto c = v->find("content");
    if (c != v->end() && c->is_string()) return c->get<std::string>();
  }
  return std::nullopt;
}

int32_t FindPiece(const Vocabulary& v, const std::string& piece, int32_t fallback) {
  for (size_t i = 0; i < v.pieces.size(); ++i) {
    if (v.pieces[i] == piece) return static_cast<int32_t>(i);
  }
  return fallback;
}

// An added token {id, content, special}: extends the vocabulary or re-types an existing piece.
absl::Status AddToken(Vocabulary& v, int64_t id, const std::string& content, bool special,
                      const std::string& path) {
  if (id < 0 || id > (int64_t{1} << 24)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": added token id ", id, " is invalid"));
  }
  if (id >= static_cast<int64_t>(v.pieces.size())) {
    if (id != static_cast<int64_t>(v.pieces.size())) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": added token '", content, "' has id ",
                                                     id, ", leaving a gap after the ",
                                                     v.pieces.size(), "-token vocabulary"));
    }
    v.pieces.push_back(content);
    v.scores.push_back(0.0f);
    v.types.push_back(static_cast<int32_t>(TokenType::kNormal));
  } else if (v.pieces[id] != content) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": added token id ", id, " is '", content,
                                                   "' but the vocabulary has '", v.pieces[id],
                                                   "' there"));
  }
  const int32_t type = v.types[id];
  if (type == static_cast<int32_t>(TokenType::kUnknown) ||
      type == static_cast<int32_t>(TokenType::kByte)) {
    return absl::OkStatus();  // keep what the model says about <unk> and byte pieces
  }
  v.types[id] = static_cast<int32_t>(special ? TokenType::kControl : TokenType::kUserDefined);
  return absl::OkStatus();
}

// model.vocab {"piece": id} as pieces by id (ids 0..n-1, each once).
absl::StatusOr<std::vector<std::string>> ReadBpeVocab(const JsonFields& m,
                                                      const std::string& path) {
  const nlohmann::json* vocab = m.Find("vocab");
  if (vocab == nullptr || !vocab->is_object() || vocab->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": the BPE model has no vocab"));
  }
  const size_t n = vocab->size();
  std::vector<std::string> pieces(n);
  std::vector<bool> seen(n, false);
  for (const auto& [piece, id_json] : vocab->items()) {
    if (!id_json.is_number_integer() || id_json.get<int64_t>() < 0 ||
        id_json.get<int64_t>() >= static_cast<int64_t>(n) || seen[id_json.get<int64_t>()]) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": vocab entry '", piece, "' has an invalid or repeated id"));
    }
    const int64_t id = id_json.get<int64_t>();
    seen[id] = true;
    pieces[id] = piece;
  }
  return pieces;
}

// A merge as tokenizers writes it: "a b" (older files) or ["a", "b"] (tokenizers >= 0.20).
std::optional<std::pair<std::string, std::string>> ParseMerge(const nlohmann::json& merge) {
  if (merge.is_string()) {
    std::vector<std::string> parts = absl::StrSplit(merge.get<std::string>(), ' ');
    if (parts.size() != 2) return std::nullopt;
    return std::pair{parts[0], parts[1]};
  }
  if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
    return std::pair{merge[0].get<std::string>(), merge[1].get<std::string>()};
  }
  return std::nullopt;
}

// added_tokens [{id, content, special}]: special ones become control tokens, the others
// user-defined (added_tokens_decoder's rule, see ApplyTokenizerConfig).
absl::Status ApplyAddedTokens(const nlohmann::json& root, Vocabulary& v, const std::string& path) {
  auto added = root.find("added_tokens");
  if (added == root.end() || !added->is_array()) return absl::OkStatus();
  std::map<int64_t, std::pair<std::string, bool>> by_id;
  for (const nlohmann::json& token : *added) {
    auto id = token.is_object() ? token.find("id") : token.end();
    std::optional<std::string> content = TokenContent(&token);
    if (id == token.end() || !id->is_number_integer() || !content) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": an added token is malformed"));
    }
    auto special = token.find("special");
    by_id[id->get<int64_t>()] = {
        *content, special != token.end() && special->is_boolean() && special->get<bool>()};
  }
  for (const auto& [id, token] : by_id) {
    if (absl::Status s = AddToken(v, id, token.first, token.second, path); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// tokenizer_config.json: add_bos_token, chat_template, added_tokens_decoder.
absl::Status ApplyTokenizerConfig(const std::string& path, Vocabulary& v) {
  absl::StatusOr<nlohmann::json> json = ReadJsonFile(path);
  if (!json.ok()) return json.status();
  JsonFields f(*json, path);
  absl::StatusOr<std::optional<bool>> add_bos = f.OptionalBool("add_bos_token");
  if (!add_bos.ok()) return add_bos.status();
  if (*add_bos) v.add_bos = **add_bos;
  if (const nlohmann::json* t = f.Find("chat_template")) {
    if (t->is_string()) {
      v.chat_template = t->get<std::string>();
    } else if (t->is_array()) {  // [{"name": "default", "template": "..."}, ...]
      for (const nlohmann::json& named : *t) {
        if (!named.is_object()) continue;
        auto name = named.find("name");
        auto text = named.find("template");
        if (name != named.end() && text != named.end() && name->is_string() && text->is_string() &&
            name->get<std::string>() == "default") {
          v.chat_template = text->get<std::string>();
        }
      }
    }
  }
  if (const nlohmann::json* added = f.Find("added_tokens_decoder"); added && added->is_object()) {
    std::map<int64_t, std::pair<std::string, bool>> by_id;
    for (const auto& [key, token] : added->items()) {
      int64_t id;
      std::optional<std::string> content = TokenContent(&token);
      if (!absl::SimpleAtoi(key, &id) || !content) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": added_tokens_decoder entry '", key, "' is malformed"));
      }
      auto special = token.find("special");
      by_id[id] = {*content,
                   special != token.end() && special->is_boolean() && special->get<bool>()};
    }
    for (const auto& [id, token] : by_id) {
      if (absl::Status s = AddToken(v, id, token.first, token.second, path); !s.ok()) return s;
    }
  }
  // bos/eos by name, when the tokenizer itself did not fix them.
  for (auto [key, field] : {std::pair{"bos_token", &v.bos_id}, std::pair{"eos_token", &v.eos_id},
                            std::pair{"unk_token", &v.unk_id}}) {
    if (std::optional<std::string> content = TokenContent(f.Find(key))) {
      *field = FindPiece(v, *content, *field);
    }
  }
  return absl::OkStatus();
}

// A pre-tokenizer as a signature of its steps ("ByteLevel+regex", "Split:<pattern>",
// "Digits:individual" ... joined by " | "), the form the family table below is written in.
absl::StatusOr<std::string> PreTokenizerSignature(const nlohmann::json& pre,
                                                  const std::string& path) {
  std::vector<const nlohmann::json*> steps;
  auto type_of = [](const nlohmann::json& c) {
    auto t = c.is_object() ? c.find("type") : c.end();
    return t != c.end() && t->is_string() ? t->get<std::string>() : std::string();
  };
  if (type_of(pre) == "Sequence") {
    auto list = pre.find("pretokenizers");
    if (list == pre.end() || !list->is_array()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": pre_tokenizer Sequence has no pretokenizers"));
    }
    for (const nlohmann::json& c : *list) steps.push_back(&c);
  } else {
    steps.push_back(&pre);
  }
  std::vector<std::string> parts;
  for (const nlohmann::json* c : steps) {
    const std::string type = type_of(*c);
    auto flag = [&](const char* key, bool fallback) {
      auto it = c->find(key);
      return it != c->end() && it->is_boolean() ? it->get<bool>() : fallback;
    };
    auto text = [&](const char* key) {
      auto it = c->find(key);
      return it != c->end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    if (type == "ByteLevel") {
      if (flag("add_prefix_space", false)) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": pre_tokenizer ByteLevel with add_prefix_space is not supported"));
      }
      parts.push_back(flag("use_regex", true) ? "ByteLevel+regex" : "ByteLevel");
    } else if (type == "Split") {
      std::string pattern;
      if (auto p = c->find("pattern"); p != c->end() && p->is_object()) {
        for (const char* kind : {"Regex", "String"}) {
          auto it = p->find(kind);
          if (it != p->end() && it->is_string()) pattern = it->get<std::string>();
        }
      }
      const bool isolated = text("behavior") == "Isolated" && !flag("invert", false);
      parts.push_back(absl::StrCat(isolated ? "Split:" : "Split(other):", pattern));
    } else if (type == "Punctuation") {
      parts.push_back(absl::StrCat("Punctuation:", text("behavior")));
    } else if (type == "Digits") {
      parts.push_back(flag("individual_digits", false) ? "Digits:individual" : "Digits");
    } else {
      parts.push_back(type.empty() ? "?" : type);
    }
  }
  return absl::StrJoin(parts, " | ");
}

// The pre-tokenizers of the families' published tokenizer.json files, by llama.cpp's name.
struct KnownPreTokenizer {
  const char* signature;
  const char* name;
};
constexpr KnownPreTokenizer kKnownPreTokenizers[] = {
    {"ByteLevel+regex", "gpt-2"},
    {"Punctuation:Contiguous | ByteLevel+regex | Digits | Split:[0-9][0-9][0-9]", "falcon"},
    {"Split:(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
     "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+ | ByteLevel",
     "llama-bpe"},
    {"Split:(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
     "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+ | ByteLevel",
     "qwen2"},
    {"Digits:individual | ByteLevel+regex", "starcoder"},
};

// The special token a TemplateProcessing post-processor puts first ("<|begin_of_text|>"), if any.
std::optional<std::string> TemplateBos(const nlohmann::json& root) {
  auto post = root.find("post_processor");
  if (post == root.end() || !post->is_object()) return std::nullopt;
  std::vector<const nlohmann::json*> processors = {&*post};
  if (auto list = post->find("processors"); list != post->end() && list->is_array()) {
    for (const nlohmann::json& p : *list) processors.push_back(&p);
  }
  for (const nlohmann::json* p : processors) {
    auto type = p->is_object() ? p->find("type") : p->end();
    if (type == p->end() || *type != "TemplateProcessing") continue;
    auto single = p->find("single");
    if (single == p->end() || !single->is_array() || single->empty()) continue;
    const nlohmann::json& first = (*single)[0];
    auto special = first.is_object() ? first.find("SpecialToken") : first.end();
    if (special == first.end() || !special->is_object()) continue;
    auto id = special->find("id");
    if (id != special->end() && id->is_string()) return id->get<std::string>();
  }
  return std::nullopt;
}

// A ByteLevel BPE tokenizer.json (GPT-2, Falcon, Llama 3, Qwen 2): pieces spelled in the byte
// alphabet, merges kept by rank, the pre-tokenizer recognised by its steps. BOS is what a
// TemplateProcessing post-processor prepends (then added, as Llama 3's is), else
// "<|endoftext|>"; tokenizer_config.json and config.json may still name others.
absl::StatusOr<Vocabulary> ReadByteLevelTokenizerJson(const nlohmann::json& root,
                                                      const JsonFields& m,
                                                      const std::string& path) {
  absl::StatusOr<std::vector<std::string>> pieces = ReadBpeVocab(m, path);
  if (!pieces.ok()) return pieces.status();
  Vocabulary v;
  v.model = "gpt2";
  v.pieces = *std::move(pieces);
  v.scores.assign(v.pieces.size(), 0.0f);
  v.types.assign(v.pieces.size(), static_cast<int32_t>(TokenType::kNormal));
  auto pre = root.find("pre_tokenizer");
  if (pre == root.end() || !pre->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": the byte-level tokenizer has no pre_tokenizer"));
  }
  absl::StatusOr<std::string> signature = PreTokenizerSignature(*pre, path);
  if (!signature.ok()) return signature.status();
  const KnownPreTokenizer* known = nullptr;
  for (const KnownPreTokenizer& k : kKnownPreTokenizers) {
    if (*signature == k.signature) known = &k;
  }
  if (known == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": the byte-level pre_tokenizer [", *signature,
        "] is not one pinfer knows (those of gpt-2, falcon, llama-bpe, qwen2, starcoder)"));
  }
  v.pre_tokenizer = known->name;
  const nlohmann::json* merges = m.Find("merges");
  if (merges == nullptr || !merges->is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": the BPE model has no merges"));
  }
  for (const nlohmann::json& merge : *merges) {
    std::optional<std::pair<std::string, std::string>> parsed = ParseMerge(merge);
    if (!parsed || parsed->first.empty() || parsed->first.find(' ') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": model.merges: merge ", v.merges.size(), " is malformed"));
    }
    v.merges.push_back(absl::StrCat(parsed->first, " ", parsed->second));
  }
  if (absl::Status s = v.ValidateMerges(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": model.merges: ", s.message()));
  }
  if (absl::Status s = ApplyAddedTokens(root, v, path); !s.ok()) return s;
  v.unk_id = -1;
  v.pad_id = -1;
  v.add_space_prefix = false;
  std::optional<std::string> template_bos = TemplateBos(root);
  v.add_bos = template_bos.has_value() || FindBpePreTokenizer(v.pre_tokenizer)->add_bos;
  const int32_t endoftext = FindPiece(v, "<|endoftext|>", 0);
  v.bos_id = template_bos ? FindPiece(v, *template_bos, endoftext) : endoftext;
  v.eos_id = FindPiece(v, "<|end_of_text|>", endoftext);
  return v;
}

}  // namespace

absl::StatusOr<Vocabulary> ReadSentencePieceTokenizer(const std::string& path) {
  absl::StatusOr<std::string> serialized = ReadRegularFile(path);
  if (!serialized.ok()) return serialized.status();
  SentencePieceVocab sp;
  if (std::string error = LoadSentencePieceModel(*serialized, &sp); !error.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", error));
  }
  Vocabulary v;
  v.model = "llama";
  v.pieces = std::move(sp.pieces);
  v.scores = std::move(sp.scores);
  v.types = std::move(sp.types);
  v.unk_id = sp.unk_id;
  v.bos_id = sp.bos_id;
  v.eos_id = sp.eos_id;
  v.pad_id = sp.pad_id;
  v.add_space_prefix = sp.add_dummy_prefix;
  return v;
}

absl::StatusOr<Vocabulary> ReadTokenizerJson(const std::string& path) {
  absl::StatusOr<nlohmann::json> json = ReadJsonFile(path);
  if (!json.ok()) return json.status();
  const nlohmann::json& root = *json;
  auto model_it = root.is_object() ? root.find("model") : root.end();
  if (model_it == root.end() || !model_it->is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": has no tokenizer 'model'"));
  }
  const nlohmann::json& model = *model_it;
  JsonFields m(model, path);
  absl::StatusOr<std::optional<std::string>> type = m.OptionalString("type");
  if (!type.ok()) return type.status();
  if (type->value_or("BPE") != "BPE") {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": tokenizer model '", **type, "' is not supported (BPE only)"));
  }
  for (const char* part : {"pre_tokenizer", "decoder"}) {
    auto it = root.find(part);
    if (it != root.end() && UsesComponent(*it, "ByteLevel")) {
      return ReadByteLevelTokenizerJson(root, m, path);
    }
  }
  absl::StatusOr<std::vector<std::string>> pieces = ReadBpeVocab(m, path);
  if (!pieces.ok()) return pieces.status();
  Vocabulary v;
  v.model = "llama";
  v.pieces = *std::move(pieces);
  const size_t n = v.pieces.size();
  absl::StatusOr<std::optional<bool>> byte_fallback = m.OptionalBool("byte_fallback");
  if (!byte_fallback.ok()) return byte_fallback.status();
  absl::flat_hash_map<std::string, int32_t> id_of;
  for (size_t i = 0; i < n; ++i) id_of[v.pieces[i]] = static_cast<int32_t>(i);

  // Scores from merge ranks (see the header).
  const nlohmann::json* merges = m.Find("merges");
  if (merges == nullptr || !merges->is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": the BPE model has no merges"));
  }
  constexpr float kUnranked = -std::numeric_limits<float>::infinity();
  std::vector<float> rank_score(n, kUnranked);
  int64_t rank = 0;
  for (const nlohmann::json& merge : *merges) {
    std::optional<std::pair<std::string, std::string>> parsed = ParseMerge(merge);
    if (!parsed) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": merge ", rank, " is malformed"));
    }
    const auto& [left, right] = *parsed;
    auto it = id_of.find(left + right);
    if (it == id_of.end()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": merge ", rank, " ('", left, "' + '",
                                                     right, "') makes no vocabulary piece"));
    }
    if (rank_score[it->second] == kUnranked) rank_score[it->second] = -static_cast<float>(rank);
    ++rank;
  }
  v.scores.resize(n);
  v.types.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const bool byte = byte_fallback->value_or(false) && IsBytePiece(v.pieces[i]);
    v.types[i] = static_cast<int32_t>(byte ? TokenType::kByte : TokenType::kNormal);
    // Pieces no merge makes (single characters, bytes) rank below every merge result.
    v.scores[i] = rank_score[i] != kUnranked ? rank_score[i]
                                             : -static_cast<float>(rank + static_cast<int64_t>(i));
  }
  absl::StatusOr<std::optional<std::string>> unk = m.OptionalString("unk_token");
  if (!unk.ok()) return unk.status();
  v.unk_id = *unk ? FindPiece(v, **unk, 0) : 0;
  if (v.types[v.unk_id] != static_cast<int32_t>(TokenType::kByte)) {
    v.types[v.unk_id] = static_cast<int32_t>(TokenType::kUnknown);
  }
  v.bos_id = FindPiece(v, "<s>", 1);
  v.eos_id = FindPiece(v, "</s>", 2);
  v.pad_id = -1;
  v.add_space_prefix = PrependsSpace(root);
  if (auto added = root.find("added_tokens"); added != root.end() && added->is_array()) {
    if (absl::Status s = ApplyAddedTokens(root, v, path); !s.ok()) return s;
    // <unk> is special in tokenizers' eyes, unknown in ours.
    v.types[v.unk_id] = static_cast<int32_t>(TokenType::kUnknown);
  }
  return v;
}

absl::StatusOr<Vocabulary> ReadHfTokenizer(const std::string& dir, const std::string& explicit_path,
                                           const HfConfig& config, int64_t model_vocab_size,
                                           std::vector<std::string>& notes) {
  std::string path = explicit_path;
  if (path.empty()) {
    for (const char* name : {"tokenizer.model", "tokenizer.json"}) {
      if (fs::exists(fs::path(dir) / name)) {
        path = (fs::path(dir) / name).string();
        break;
      }
    }
  }
  if (path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        dir, ": has no tokenizer.model or tokenizer.json (pass one with --tokenizer)"));
  }
  const bool json = fs::path(path).extension() == ".json";
  absl::StatusOr<Vocabulary> vocabulary =
      json ? ReadTokenizerJson(path) : ReadSentencePieceTokenizer(path);
  if (!vocabulary.ok()) return vocabulary.status();
  Vocabulary& v = *vocabulary;
  const fs::path config_path = fs::path(dir) / "tokenizer_config.json";
  if (fs::exists(config_path)) {
    if (absl::Status s = ApplyTokenizerConfig(config_path.string(), v); !s.ok()) return s;
  }
  const int64_t n = static_cast<int64_t>(v.size());
  if (n > model_vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": the tokenizer has ", n,
                                                   " tokens but the model only ", model_vocab_size,
                                                   " embedding rows"));
  }
  if (n < model_vocab_size) {
    for (int64_t i = n; i < model_vocab_size; ++i) {
      v.pieces.push_back(absl::StrCat("[PAD", i, "]"));
      v.scores.push_back(0.0f);
      v.types.push_back(static_cast<int32_t>(TokenType::kUnused));
    }
    notes.push_back(absl::StrCat("the tokenizer has ", n, " tokens, the model ", model_vocab_size,
                                 ": padded with unused [PAD<i>] tokens"));
  }
  const int64_t size = static_cast<int64_t>(v.size());
  auto apply = [&](const std::optional<int64_t>& id, int32_t* field, const char* what) {
    if (!id) return;
    if (*id < 0 && field == &v.pad_id) {
      *field = -1;  // "no padding token"
    } else if (*id >= 0 && *id < size) {
      *field = static_cast<int32_t>(*id);
    } else {
      notes.push_back(
          absl::StrCat("config.json ", what, " ", *id, " is outside the vocabulary: ignored"));
    }
  };
  apply(config.bos_token_id, &v.bos_id, "bos_token_id");
  apply(config.eos_token_id, &v.eos_id, "eos_token_id");
  apply(config.pad_token_id, &v.pad_id, "pad_token_id");
  return vocabulary;
}

}  // namespace pinfer
