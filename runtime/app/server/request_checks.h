// What pi-server checks in a request's headers: the API key (RFC 6750 bearer tokens, RFC 7235
// schemes). No I/O here; http_server.cc answers with what these return.
#pragma once

#include <string_view>

#include "httplib.h"

namespace pinfer {

enum class KeyCheck { kAccepted, kMissing, kWrong };

// Whether `headers` carry exactly one "Authorization: Bearer <key>" whose token is `key` (not
// empty). The scheme is case-insensitive (RFC 7235); the token is compared in full (a header value
// may hold a NUL, which cpp-httplib's get_header_value would cut it at) and in constant time.
KeyCheck CheckApiKey(const httplib::Headers& headers, std::string_view key);

// True when `given` equals `secret`. The time taken depends only on given.size(): neither on where
// a guess first differs nor on the secret's length.
bool SameSecret(std::string_view given, std::string_view secret);

}  // namespace pinfer
