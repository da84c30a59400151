// What pi-server checks in a request's headers before it reads a byte of the body: how the body is
// framed (RFC 9112 section 6) and the API key (RFC 6750 bearer tokens, RFC 7235 schemes). No I/O
// here; http_server.cc answers with what these return.
//
// cpp-httplib 0.11 reads the body according to the headers without questioning them: a POST with
// no length is read until the client closes (which it never does while it waits for its answer), a
// Content-Length over the limit is read and thrown away before the 413, and of two differing
// Content-Length headers the first wins (a request-smuggling ambiguity behind a proxy that picks
// the other). So the framing is checked first, and a request we refuse is answered at once and its
// connection closed (its body is never read, so the connection cannot carry another request).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "httplib.h"
#include "runtime/app/server/openai_protocol.h"

namespace pinfer {

struct FramingVerdict {
  // Set: answer this instead of handling the request.
  std::optional<ApiError> error;
  // The body, if any, will not be read (a refused request, or a GET that has one): the connection
  // must close after the response.
  bool close_after_response = false;
};

// Methods other than GET, HEAD and POST: 405. Transfer-Encoding other than one "chunked": 501.
// Both Content-Length and Transfer-Encoding, a Content-Length that is not a decimal number, or two
// that differ: 400. A POST with neither: 411. A Content-Length over `max_body_bytes`: 413.
FramingVerdict CheckFraming(const httplib::Request& req, uint64_t max_body_bytes);

// The methods CheckFraming lets through, for a 405's Allow header.
inline constexpr char kAllowedMethods[] = "GET, HEAD, POST";

enum class KeyCheck { kAccepted, kMissing, kWrong };

// Whether `headers` carry exactly one "Authorization: Bearer <key>" whose token is `key` (not
// empty). The scheme is case-insensitive (RFC 7235); the token is compared in full (a header value
// may hold a NUL, which cpp-httplib's get_header_value would cut it at) and in constant time.
KeyCheck CheckApiKey(const httplib::Headers& headers, std::string_view key);

// True when `given` equals `secret`. The time taken depends only on given.size(): neither on where
// a guess first differs nor on the secret's length.
bool SameSecret(std::string_view given, std::string_view secret);

}  // namespace pinfer
