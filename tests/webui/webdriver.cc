#include "tests/webui/webdriver.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/runtime/test_models.h"

namespace pinfer::test {
namespace {

using nlohmann::json;

// Every WebDriver element reference is an object with this key.
constexpr char kElementKey[] = "element-6066-11e4-a52e-4f735466cecf";
// Headless Chromium may take long to start on a loaded machine; a command rarely takes more.
constexpr std::chrono::seconds kStartTimeout(60);

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::string FindInPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  for (const auto dir : absl::StrSplit(path == nullptr ? "" : path, ':')) {
    if (dir.empty()) continue;
    const std::filesystem::path candidate = std::filesystem::path(std::string(dir)) / program;
    if (access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return "";
}

bool Eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

std::unique_ptr<WebDriver> WebDriver::Start(int width, int height, std::string* error,
                                            bool* missing) {
  const std::string chromium = FindInPath("chromium");
  const std::string chromedriver = FindInPath("chromedriver");
  *missing = chromium.empty() || chromedriver.empty();
  if (*missing) {
    *error = "chromium and chromedriver (Debian: chromium, chromium-driver) are not both in $PATH";
    return nullptr;
  }
  // chromedriver picks a free port (--port=0) and says which on its output, sent to a file so
  // that it can never block on a full pipe.
  const std::string log = ScratchDir() + "/chromedriver-" + std::to_string(getpid()) + ".log";
  const pid_t pid = fork();
  if (pid < 0) {
    *error = "fork failed";
    return nullptr;
  }
  if (pid == 0) {
    setpgid(0, 0);  // its own group: Chromium's processes end with it
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execl(chromedriver.c_str(), "chromedriver", "--port=0", static_cast<char*>(nullptr));
    _exit(127);
  }
  setpgid(pid, pid);
  int port = -1;
  const std::regex started("started successfully on port ([0-9]+)");
  const bool up = Eventually(
      [&] {
        std::smatch match;
        const std::string text = ReadFile(log);
        if (std::regex_search(text, match, started)) port = std::stoi(match[1].str());
        return port > 0 || waitpid(pid, nullptr, WNOHANG) == pid;
      },
      kStartTimeout);
  std::unique_ptr<WebDriver> driver(new WebDriver(pid, port));
  if (!up || port <= 0) {
    *error = "chromedriver did not start: " + ReadFile(log);
    return nullptr;
  }
  driver->client_.set_connection_timeout(std::chrono::seconds(10));
  driver->client_.set_read_timeout(kStartTimeout);
  driver->client_.set_write_timeout(kStartTimeout);
  // We run as root in a container: no sandbox, no GPU, /tmp instead of a small /dev/shm.
  const json capabilities = {
      {"capabilities",
       {{"alwaysMatch",
         {{"browserName", "chrome"},
          {"goog:chromeOptions",
           {{"binary", chromium},
            {"args",
             {"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--no-first-run", "--hide-scrollbars",
              "--window-size=" + std::to_string(width) + "," + std::to_string(height)}}}}}}}}};
  const json created = driver->Send("POST", "/session", capabilities, error);
  if (!created.is_object() || !created["sessionId"].is_string()) {
    if (error->empty()) *error = "no session in " + created.dump();
    *error = "chromedriver could not start Chromium: " + *error;
    return nullptr;
  }
  driver->session_ = created["sessionId"].get<std::string>();
  return driver;
}

WebDriver::~WebDriver() {
  if (!session_.empty()) {
    std::string ignored;
    Send("DELETE", "/session/" + session_, json::object(), &ignored);
  }
  if (driver_ > 0) {
    kill(-driver_, SIGTERM);
    waitpid(driver_, nullptr, 0);
  }
}

json WebDriver::Send(const std::string& method, const std::string& path, const json& body,
                     std::string* error) {
  httplib::Result result = method == "GET"      ? client_.Get(path)
                           : method == "DELETE" ? client_.Delete(path)
                                                : client_.Post(path, body.dump(), "application/json");
  if (!result) {
    *error = method + " " + path + ": no answer from chromedriver (" +
             httplib::to_string(result.error()) + ")";
    return nullptr;
  }
  const json reply = json::parse(result->body, nullptr, /*allow_exceptions=*/false);
  if (result->status != 200 || !reply.is_object()) {
    *error = method + " " + path + ": HTTP " + std::to_string(result->status) + " " + result->body;
    return nullptr;
  }
  return reply.value("value", json());
}

json WebDriver::Session(const std::string& method, const std::string& path, const json& body) {
  std::string error;
  json value = Send(method, "/session/" + session_ + path, body, &error);
  if (!error.empty()) ADD_FAILURE() << "WebDriver: " << error;
  return value;
}

std::string WebDriver::Element(const std::string& css) {
  const json found = Session("POST", "/element", {{"using", "css selector"}, {"value", css}});
  if (!found.is_object() || !found[kElementKey].is_string()) {
    ADD_FAILURE() << "no element " << css << ": " << found.dump();
    return "none";
  }
  return found[kElementKey].get<std::string>();
}

void WebDriver::Navigate(const std::string& url) { Session("POST", "/url", {{"url", url}}); }

json WebDriver::Execute(const std::string& script, const json& args) {
  return Session("POST", "/execute/sync", {{"script", script}, {"args", args}});
}

void WebDriver::Click(const std::string& css) {
  Session("POST", "/element/" + Element(css) + "/click");
}

void WebDriver::Clear(const std::string& css) {
  Session("POST", "/element/" + Element(css) + "/clear");
}

void WebDriver::Type(const std::string& css, const std::string& text) {
  Session("POST", "/element/" + Element(css) + "/value", {{"text", text}});
}

std::string WebDriver::Screenshot() {
  const json base64 = Session("GET", "/screenshot");
  std::string png;
  if (!base64.is_string() || !absl::Base64Unescape(base64.get<std::string>(), &png)) {
    ADD_FAILURE() << "the screenshot is not base64";
  }
  return png;
}

void WebDriver::SetWindowSize(int width, int height) {
  Session("POST", "/window/rect", {{"width", width}, {"height", height}});
}

}  // namespace pinfer::test
