#include "runtime/model/vocabulary.h"

#include "absl/strings/str_cat.h"

namespace pinfer {

absl::Status Vocabulary::Validate() const {
  if (model != "llama") {
    return absl::InvalidArgumentError(absl::StrCat("unknown tokenizer model '", model, "'"));
  }
  if (pieces.empty()) return absl::InvalidArgumentError("the tokenizer has no tokens");
  if (scores.size() != pieces.size() || types.size() != pieces.size()) {
    return absl::InvalidArgumentError(absl::StrCat("the tokenizer has ", pieces.size(),
                                                   " pieces but ", scores.size(), " scores and ",
                                                   types.size(), " types"));
  }
  const int32_t n = static_cast<int32_t>(pieces.size());
  for (int32_t id : {bos_id, eos_id, unk_id}) {
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
  if (absl::Status s = v.Validate(); !s.ok()) return s;
  return v;
}

}  // namespace pinfer
