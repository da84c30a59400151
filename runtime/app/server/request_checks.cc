#include "runtime/app/server/request_checks.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"

namespace pinfer {
namespace {

std::vector<std::string> Values(const httplib::Headers& headers, const std::string& name) {
  std::vector<std::string> values;
  const auto range = headers.equal_range(name);
  for (auto it = range.first; it != range.second; ++it) values.push_back(it->second);
  return values;
}

}  // namespace

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
    const unsigned char s = secret.empty() ? 0 : static_cast<unsigned char>(secret[i % secret.size()]);
    diff = diff | (static_cast<unsigned char>(given[i]) ^ s);
  }
  return diff == 0 && !secret.empty();
}

}  // namespace pinfer
