// The bodies of POST /tokenize and POST /detokenize, as llama.cpp's llama-server answers them, so
// that its clients (token counting, prompt building) work against pi-server unchanged. No I/O here
// (http_server.cc reads the body, checks the API key and sends what these return).
//
//   /tokenize    {"content": "text", "add_special": false, "with_pieces": false}
//                  -> {"tokens": [ids]}; with_pieces: {"tokens": [{"id": id, "piece": p}]}, p the
//                     token's text, or the list of its bytes when that text is not valid UTF-8 (a
//                     byte token that is part of a character)
//                  add_special: prepend BOS when the vocabulary adds one; special pieces written in
//                  the text ("<s>") are recognised, as llama-server does
//   /detokenize  {"tokens": [ids]} -> {"content": "text"}, the tokens' pieces joined, special ones
//                  included, as llama-server's: so a SentencePiece model's first piece keeps the
//                  space that /tokenize's text gained (" Hello" for "Hello").
//
// Unlike llama-server, which answers {"tokens": []} or {"content": ""} to a body without the field
// and fails on ids it cannot read, a missing or mistyped field and an id outside the vocabulary are
// a 400 naming the field, as the completion endpoints answer.
#pragma once

#include <variant>

#include "nlohmann/json.hpp"
#include "runtime/app/server/openai_protocol.h"
#include "runtime/text/tokenizer.h"

namespace pinfer {

std::variant<nlohmann::json, ApiError> TokenizeReply(const nlohmann::json& body,
                                                     const Tokenizer& tokenizer);
std::variant<nlohmann::json, ApiError> DetokenizeReply(const nlohmann::json& body,
                                                       const Tokenizer& tokenizer);

}  // namespace pinfer
