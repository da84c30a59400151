#include "runtime/app/server/request_checks.h"

#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/common/cli_common.h"

namespace pinfer {
namespace {

std::vector<std::string> Values(const httplib::Headers& headers, const std::string& name) {
  std::vector<std::string> values;
  const auto range = headers.equal_range(name);
  for (auto it = range.first; it != range.second; ++it) values.push_back(it->second);
  return values;
}

ApiError Refusal(int status, std::string message, std::string code) {
  ApiError error;
  error.http_status = status;
  error.message = std::move(message);
  error.code = std::move(code);
  return error;
}

// 1*DIGIT, as RFC 9110 defines Content-Length (no sign, no spaces, no list); false on overflow.
bool ParseLength(const std::string& text, uint64_t* length) {
  if (text.empty() || text.size() > 19) return false;
  for (const char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return absl::SimpleAtoi(text, length);
}

}  // namespace

FramingVerdict CheckFraming(const httplib::Request& req, uint64_t max_body_bytes) {
  FramingVerdict verdict;
  auto refuse = [&verdict](ApiError error) {
    verdict.error = std::move(error);
    verdict.close_after_response = true;
    return verdict;
  };
  const bool has_body_method = req.method == "POST";
  if (!has_body_method && req.method != "GET" && req.method != "HEAD") {
    return refuse(Refusal(
        405,
        absl::StrCat("the method ", req.method, " is not allowed here (", kAllowedMethods, ")"),
        "method_not_allowed"));
  }
  const std::vector<std::string> encodings = Values(req.headers, "Transfer-Encoding");
  const std::vector<std::string> lengths = Values(req.headers, "Content-Length");
  if (!encodings.empty() && !lengths.empty()) {
    return refuse(
        InvalidRequest("a request must not have both Content-Length and "
                       "Transfer-Encoding"));
  }
  if (!encodings.empty() &&
      (encodings.size() > 1 || !absl::EqualsIgnoreCase(encodings[0], "chunked"))) {
    return refuse(Refusal(501,
                          absl::StrCat("the Transfer-Encoding '", absl::StrJoin(encodings, ", "),
                                       "' is not supported (only chunked)"),
                          "not_implemented"));
  }
  uint64_t length = 0;
  for (size_t i = 0; i < lengths.size(); ++i) {
    uint64_t parsed = 0;
    if (!ParseLength(lengths[i], &parsed)) {
      return refuse(InvalidRequest(
          absl::StrCat("the Content-Length '", lengths[i], "' is not a number of bytes")));
    }
    // Equal duplicates are one length (RFC 9110 section 8.6 allows either answer).
    if (i > 0 && parsed != length) {
      return refuse(InvalidRequest(
          absl::StrCat("conflicting Content-Length headers: ", absl::StrJoin(lengths, ", "))));
    }
    length = parsed;
  }
  if (has_body_method && encodings.empty() && lengths.empty()) {
    return refuse(Refusal(411,
                          "a POST needs a Content-Length header (or Transfer-Encoding: chunked)",
                          "length_required"));
  }
  if (length > max_body_bytes) {
    return refuse(Refusal(
        413,
        absl::StrCat("the request body (", length, " bytes) is larger than the server's limit of ",
                     FormatBytes(max_body_bytes), " (--max-body)"),
        "payload_too_large"));
  }
  // cpp-httplib does not read the body of a GET or HEAD: what follows the headers would be taken
  // for the next request.
  verdict.close_after_response = !has_body_method && (length > 0 || !encodings.empty());
  return verdict;
}

KeyCheck CheckApiKey(const httplib::Headers& headers, std::string_view key) {
  const std::vector<std::string> values = Values(headers, "Authorization");
  if (values.empty()) return KeyCheck::kMissing;
  if (values.size() > 1 || key.empty()) return KeyCheck::kWrong;
  // credentials = auth-scheme 1*SP token68; cpp-httplib has already trimmed the value's ends.
  const std::string_view value = values[0];
  const size_t space = value.find(' ');
  if (space == std::string_view::npos ||
      !absl::EqualsIgnoreCase(absl::string_view(value.data(), space), "Bearer")) {
    return KeyCheck::kWrong;
  }
  std::string_view token = value.substr(space);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  return SameSecret(token, key) ? KeyCheck::kAccepted : KeyCheck::kWrong;
}

bool SameSecret(std::string_view given, std::string_view secret) {
  // Every byte of `given` is compared (with the secret repeated under it), and the differences are
  // OR-ed together; volatile keeps the compiler from turning the loop into an early exit.
  volatile unsigned char diff = given.size() == secret.size() ? 0 : 1;
  for (size_t i = 0; i < given.size(); ++i) {
    const unsigned char s =
        secret.empty() ? 0 : static_cast<unsigned char>(secret[i % secret.size()]);
    diff = diff | (static_cast<unsigned char>(given[i]) ^ s);
  }
  return diff == 0 && !secret.empty();
}

}  // namespace pinfer
