#include "runtime/app/server/tokenize_endpoints.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace pinfer {
namespace {

using nlohmann::json;

// An optional boolean field; false when absent or null.
std::variant<bool, ApiError> Flag(const json& body, const char* field) {
  const auto it = body.find(field);
  if (it == body.end() || it->is_null()) return false;
  if (!it->is_boolean()) {
    return InvalidRequest(absl::StrCat("'", field, "' must be true or false"), "", field);
  }
  return it->get<bool>();
}

// The piece as a JSON string when it is valid UTF-8 (nlohmann's serialiser is the judge), else
// the list of its bytes, as llama-server sends a token that is part of a character.
json PieceJson(const std::string& piece) {
  try {
    (void)json(piece).dump(-1, ' ', false, json::error_handler_t::strict);
    return piece;
  } catch (const json::type_error&) {
    json bytes = json::array();
    for (const unsigned char c : piece) bytes.push_back(static_cast<int>(c));
    return bytes;
  }
}

}  // namespace

std::variant<json, ApiError> TokenizeReply(const json& body, const Tokenizer& tokenizer) {
  if (!body.is_object()) return InvalidRequest("the request body must be a JSON object");
  const auto content = body.find("content");
  if (content == body.end() || content->is_null()) {
    return InvalidRequest("'content' is required", "", "content");
  }
  if (!content->is_string()) return InvalidRequest("'content' must be a string", "", "content");
  const std::variant<bool, ApiError> add_special = Flag(body, "add_special");
  if (const ApiError* error = std::get_if<ApiError>(&add_special)) return *error;
  const std::variant<bool, ApiError> with_pieces = Flag(body, "with_pieces");
  if (const ApiError* error = std::get_if<ApiError>(&with_pieces)) return *error;

  const std::vector<int32_t> tokens = tokenizer.Encode(
      content->get_ref<const std::string&>(), std::get<bool>(add_special), /*parse_special=*/true);
  json out = json::array();
  for (const int32_t token : tokens) {
    if (std::get<bool>(with_pieces)) {
      out.push_back({{"id", token}, {"piece", PieceJson(tokenizer.TokenToPiece(token, true))}});
    } else {
      out.push_back(token);
    }
  }
  return json{{"tokens", std::move(out)}};
}

std::variant<json, ApiError> DetokenizeReply(const json& body, const Tokenizer& tokenizer) {
  if (!body.is_object()) return InvalidRequest("the request body must be a JSON object");
  const auto tokens = body.find("tokens");
  if (tokens == body.end() || tokens->is_null()) {
    return InvalidRequest("'tokens' is required", "", "tokens");
  }
  if (!tokens->is_array()) {
    return InvalidRequest("'tokens' must be a list of token ids", "", "tokens");
  }
  std::string content;
  for (size_t i = 0; i < tokens->size(); ++i) {
    const json& token = (*tokens)[i];
    if (!token.is_number_integer()) {
      return InvalidRequest(absl::StrCat("'tokens[", i, "]' must be an integer token id"), "",
                            "tokens");
    }
    // An unsigned number beyond int64 reads as a negative one: refused too.
    const int64_t id = token.get<int64_t>();
    if (id < 0 || id >= tokenizer.size()) {
      return InvalidRequest(
          absl::StrCat("token id ", token.dump(), " (tokens[", i,
                       "]) is outside the vocabulary of ", tokenizer.size(), " tokens"),
          "", "tokens");
    }
    content += tokenizer.TokenToPiece(static_cast<int32_t>(id), /*special=*/true);
  }
  return json{{"content", std::move(content)}};
}

}  // namespace pinfer
