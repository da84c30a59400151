// How pi-server checks the API key: the check itself, then over the wire.
#include <chrono>
#include <string>

#include "gtest/gtest.h"
#include "runtime/app/server/request_checks.h"
#include "tests/server/server_harness.h"

namespace pinfer {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

TEST(RequestChecksTest, ApiKey) {
  using H = httplib::Headers;
  const std::string key = "sekret-123";
  EXPECT_EQ(CheckApiKey(H{{"Authorization", "Bearer sekret-123"}}, key), KeyCheck::kAccepted);
  // The scheme is case-insensitive (RFC 7235), and may be followed by more than one space.
  EXPECT_EQ(CheckApiKey(H{{"Authorization", "bearer sekret-123"}}, key), KeyCheck::kAccepted);
  EXPECT_EQ(CheckApiKey(H{{"authorization", "BEARER   sekret-123"}}, key), KeyCheck::kAccepted);

  EXPECT_EQ(CheckApiKey(H{}, key), KeyCheck::kMissing);
  EXPECT_EQ(CheckApiKey(H{{"Authorization", std::string("Bearer sekret-123\0junk", 22)}}, key),
            KeyCheck::kWrong);
  for (const char* wrong : {"Bearer sekret-12", "Bearer sekret-1234", "Bearer ", "Bearer",
                            "Bearersekret-123", "Basic sekret-123", "sekret-123",
                            "Bearer sekret-123 x"}) {
    EXPECT_EQ(CheckApiKey(H{{"Authorization", wrong}}, key), KeyCheck::kWrong) << wrong;
  }
  // Two keys are one too many, even if one is right.
  EXPECT_EQ(CheckApiKey(H{{"Authorization", "Bearer sekret-123"}, {"Authorization", "Bearer x"}},
                        key),
            KeyCheck::kWrong);
  // No key accepts nothing.
  EXPECT_EQ(CheckApiKey(H{{"Authorization", "Bearer "}}, ""), KeyCheck::kWrong);
}

TEST(RequestChecksTest, SameSecret) {
  EXPECT_TRUE(SameSecret("abc", "abc"));
  EXPECT_FALSE(SameSecret("abd", "abc"));
  EXPECT_FALSE(SameSecret("ab", "abc"));
  EXPECT_FALSE(SameSecret("abcabc", "abc"));  // the secret repeated under a longer guess
  EXPECT_FALSE(SameSecret("", "abc"));
  EXPECT_FALSE(SameSecret("", ""));
  EXPECT_FALSE(SameSecret(std::string("abc\0", 4), "abc"));
}

TEST(RequestChecksTest, TheApiKeyOverTheWire) {
  ServerOptions options;
  options.api_key = "sekret-123";
  std::unique_ptr<PiServer> server = test::StartServer(options);
  ASSERT_NE(server, nullptr);
  const std::string body = json{{"prompt", "Hi"}, {"max_tokens", 2}}.dump();
  auto post = [&](const std::string& authorization) {
    test::RawConnection connection(server->port());
    connection.Send("POST /v1/completions HTTP/1.1\r\nHost: test\r\nAuthorization: " +
                    authorization + "\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\nConnection: close\r\n\r\n" + body);
    return test::RawStatus(connection.ReadResponse(milliseconds(5000)));
  };
  EXPECT_EQ(post("Bearer sekret-123"), 200);
  EXPECT_EQ(post("bearer sekret-123"), 200);
  EXPECT_EQ(post(std::string("Bearer sekret-123\0junk", 22)), 401);
  EXPECT_EQ(post("Bearer sekret-1234"), 401);
}

}  // namespace
}  // namespace pinfer
