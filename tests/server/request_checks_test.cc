// What pi-server checks before it reads a body (request framing) and the API key: the checks
// themselves, then over the wire, where a refusal must come at once and close the connection.
#include "runtime/app/server/request_checks.h"

#include <chrono>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/server/server_harness.h"

namespace pinfer {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

httplib::Request MakeRequest(const std::string& method, const httplib::Headers& headers) {
  httplib::Request req;
  req.method = method;
  req.path = "/v1/completions";
  req.headers = headers;
  return req;
}

// The status CheckFraming answers (0: none) and whether the connection is to close.
std::pair<int, bool> Framing(const std::string& method, const httplib::Headers& headers) {
  const FramingVerdict v = CheckFraming(MakeRequest(method, headers), 4096);
  return {v.error ? v.error->http_status : 0, v.close_after_response};
}

TEST(RequestChecksTest, Framing) {
  using H = httplib::Headers;
  EXPECT_EQ(Framing("POST", H{{"Content-Length", "10"}}), std::make_pair(0, false));
  EXPECT_EQ(Framing("POST", H{{"Transfer-Encoding", "chunked"}}), std::make_pair(0, false));
  EXPECT_EQ(Framing("POST", H{{"Transfer-Encoding", "Chunked"}}), std::make_pair(0, false));
  EXPECT_EQ(Framing("POST", H{{"Content-Length", "4096"}}), std::make_pair(0, false));
  EXPECT_EQ(Framing("GET", H{}), std::make_pair(0, false));
  EXPECT_EQ(Framing("HEAD", H{}), std::make_pair(0, false));
  // Equal duplicates are one length.
  EXPECT_EQ(Framing("POST", H{{"Content-Length", "10"}, {"content-length", "10"}}),
            std::make_pair(0, false));
  // A GET with a body is served, but its body would be taken for the next request.
  EXPECT_EQ(Framing("GET", H{{"Content-Length", "5"}}), std::make_pair(0, true));
  EXPECT_EQ(Framing("GET", H{{"Content-Length", "0"}}), std::make_pair(0, false));

  EXPECT_EQ(Framing("POST", H{}), std::make_pair(411, true));
  EXPECT_EQ(Framing("PUT", H{}), std::make_pair(405, true));
  EXPECT_EQ(Framing("DELETE", H{}), std::make_pair(405, true));
  EXPECT_EQ(Framing("OPTIONS", H{}), std::make_pair(405, true));
  EXPECT_EQ(Framing("POST", H{{"Content-Length", "4097"}}), std::make_pair(413, true));
  EXPECT_EQ(Framing("POST", H{{"Content-Length", "99999999999999999999"}}),
            std::make_pair(400, true));
  for (const char* bad : {"abc", "-1", "+5", "5, 5", "0x10", "1 0"}) {
    EXPECT_EQ(Framing("POST", H{{"Content-Length", bad}}), std::make_pair(400, true)) << bad;
  }
  EXPECT_EQ(Framing("POST", H{{"Content-Length", "10"}, {"Content-Length", "5"}}),
            std::make_pair(400, true));
  EXPECT_EQ(Framing("POST", H{{"Content-Length", "10"}, {"Transfer-Encoding", "chunked"}}),
            std::make_pair(400, true));
  EXPECT_EQ(Framing("POST", H{{"Transfer-Encoding", "gzip, chunked"}}), std::make_pair(501, true));
  EXPECT_EQ(Framing("POST", H{{"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}}),
            std::make_pair(501, true));

  const FramingVerdict conflict =
      CheckFraming(MakeRequest("POST", H{{"Content-Length", "10"}, {"Content-Length", "5"}}), 4096);
  EXPECT_TRUE(absl::StrContains(conflict.error->message, "conflicting Content-Length"))
      << conflict.error->message;
  const FramingVerdict large =
      CheckFraming(MakeRequest("POST", H{{"Content-Length", "100000"}}), 4096);
  EXPECT_EQ(large.error->code, "payload_too_large");
  EXPECT_TRUE(absl::StrContains(large.error->message, "100000 bytes")) << large.error->message;
  EXPECT_TRUE(absl::StrContains(large.error->message, "4.00 KiB (--max-body)"))
      << large.error->message;
}

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
  for (const char* wrong :
       {"Bearer sekret-12", "Bearer sekret-1234", "Bearer ", "Bearer", "Bearersekret-123",
        "Basic sekret-123", "sekret-123", "Bearer sekret-123 x"}) {
    EXPECT_EQ(CheckApiKey(H{{"Authorization", wrong}}, key), KeyCheck::kWrong) << wrong;
  }
  // Two keys are one too many, even if one is right.
  EXPECT_EQ(
      CheckApiKey(H{{"Authorization", "Bearer sekret-123"}, {"Authorization", "Bearer x"}}, key),
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

struct Answer {
  std::string response;
  double seconds = 0;  // until the response came
  bool closed = false;
};

// Sends `request` on a connection of its own; the response, and whether the server then closed.
Answer Ask(int port, const std::string& request) {
  test::RawConnection connection(port);
  connection.Send(request);
  const auto start = std::chrono::steady_clock::now();
  Answer answer;
  answer.response = connection.ReadResponse(milliseconds(5000));
  answer.seconds = test::SecondsSince(start);
  answer.closed = connection.ClosedWithin(milliseconds(3000));
  return answer;
}

void ExpectRefusal(const Answer& a, int status, const std::string& code,
                   const std::string& mention) {
  ASSERT_EQ(test::RawStatus(a.response), status) << a.response;
  EXPECT_LT(a.seconds, 1.0) << a.response;
  EXPECT_TRUE(a.closed) << a.response;
  EXPECT_EQ(test::RawHeader(a.response, "Connection"), "close") << a.response;
  const json body = json::parse(test::RawBody(a.response), nullptr, false);
  ASSERT_TRUE(body.contains("error")) << a.response;
  if (!code.empty()) {
    EXPECT_EQ(body["error"]["code"], code) << a.response;
  }
  EXPECT_TRUE(absl::StrContains(body["error"]["message"].get<std::string>(), mention))
      << a.response << " lacks " << mention;
}

TEST(RequestChecksTest, BadFramingIsRefusedAtOnceAndTheConnectionClosed) {
  ServerOptions options;
  options.max_body_bytes = 4096;
  std::unique_ptr<PiServer> server = test::StartServer(options);
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  const std::string post = "POST /v1/completions HTTP/1.1\r\nHost: test\r\n";
  const std::string body = json{{"prompt", "Hi"}, {"max_tokens", 2}}.dump();
  const std::string length = "Content-Length: " + std::to_string(body.size()) + "\r\n";

  // A length over --max-body, whose body the client waits to send until it has an answer.
  ExpectRefusal(Ask(port, post + "Content-Length: 100000\r\n\r\n"), 413, "payload_too_large",
                "--max-body");
  // ...and one sent whole.
  ExpectRefusal(Ask(port, post + "Content-Length: 5000\r\n\r\n" + std::string(5000, 'a')), 413,
                "payload_too_large", "4.00 KiB");
  ExpectRefusal(Ask(port, post + "\r\n"), 411, "length_required", "Content-Length");
  const Answer put = Ask(port, "PUT /v1/completions HTTP/1.1\r\nHost: test\r\n\r\n");
  ExpectRefusal(put, 405, "method_not_allowed", "PUT");
  EXPECT_EQ(test::RawHeader(put.response, "Allow"), "GET, HEAD, POST");
  ExpectRefusal(Ask(port, post + length + "Content-Length: 5\r\n\r\n" + body), 400, "",
                "conflicting Content-Length");
  ExpectRefusal(Ask(port, post + length + "Transfer-Encoding: chunked\r\n\r\n" + body), 400, "",
                "both Content-Length and Transfer-Encoding");
  ExpectRefusal(Ask(port, post + "Transfer-Encoding: gzip\r\n\r\n"), 501, "not_implemented",
                "gzip");

  // Well framed, on one kept-alive connection: a completion, then /health.
  test::RawConnection connection(port);
  connection.Send(post + length + "\r\n" + body);
  const std::string first = connection.ReadResponse(milliseconds(5000));
  EXPECT_EQ(test::RawStatus(first), 200) << first;
  connection.Send("GET /health HTTP/1.1\r\nHost: test\r\n\r\n");
  const std::string second = connection.ReadResponse(milliseconds(5000));
  EXPECT_EQ(test::RawStatus(second), 200) << second;
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
