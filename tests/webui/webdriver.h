// A WebDriver client for the browser tests: starts chromedriver (Debian's chromium-driver) on a
// free port, opens a headless Chromium session through it and speaks the W3C WebDriver protocol
// (plain HTTP + JSON: cpp-httplib's client, nlohmann-json). Commands that fail are test failures
// naming the command and the driver's message.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "httplib.h"
#include "nlohmann/json.hpp"

namespace pinfer::test {

// The path of `program` found in $PATH; empty when absent.
std::string FindInPath(const std::string& program);

class WebDriver {
 public:
  // Starts chromedriver and a headless Chromium of `width` x `height` pixels. nullptr with
  // `*error` saying why when chromium or chromedriver is not installed (`*missing` true: the
  // caller may skip) or when they do not start (a failure).
  static std::unique_ptr<WebDriver> Start(int width, int height, std::string* error,
                                          bool* missing);
  ~WebDriver();  // ends the session (Chromium quits) and chromedriver
  WebDriver(const WebDriver&) = delete;
  WebDriver& operator=(const WebDriver&) = delete;

  void Navigate(const std::string& url);
  // Runs `script` (a function body: "return ...") in the page; its result.
  nlohmann::json Execute(const std::string& script,
                         const nlohmann::json& args = nlohmann::json::array());
  // The first element matching the CSS selector: a test failure when there is none.
  void Click(const std::string& css);
  void Clear(const std::string& css);
  void Type(const std::string& css, const std::string& text);  // keys into the element
  // The page as PNG bytes.
  std::string Screenshot();
  void SetWindowSize(int width, int height);

 private:
  WebDriver(pid_t driver, int port) : driver_(driver), client_("127.0.0.1", port) {}
  // A command to the session; its "value" (null after a failure, which is reported).
  nlohmann::json Session(const std::string& method, const std::string& path,
                         const nlohmann::json& body = nlohmann::json::object());
  nlohmann::json Send(const std::string& method, const std::string& path,
                      const nlohmann::json& body, std::string* error);
  std::string Element(const std::string& css);

  pid_t driver_ = -1;
  httplib::Client client_;
  std::string session_;
};

// Whether `condition` holds before `timeout`, checking every few milliseconds.
bool Eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace pinfer::test
