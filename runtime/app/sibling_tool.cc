#include "runtime/app/sibling_tool.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

extern char** environ;

namespace pinfer {
namespace {

namespace fs = std::filesystem;

bool IsExecutable(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec) && access(path.c_str(), X_OK) == 0;
}

// The last non-empty line of a program's stderr, without its "<name>: error: " prefix.
std::string LastLine(const std::string& text, const std::string& error_prefix) {
  std::string last;
  for (absl::string_view line : absl::StrSplit(text, absl::ByAnyChar("\r\n"))) {
    if (!absl::StripAsciiWhitespace(line).empty()) last = std::string(line);
  }
  absl::string_view trimmed = last;
  absl::ConsumePrefix(&trimmed, error_prefix);
  return std::string(trimmed);
}

// Passes a tool's stderr on to ours, holding back its error line (which the caller reports in its
// own words). Text is passed on at each line or progress-bar redraw ('\r'), and at once when it
// cannot be the start of the error line.
class StderrForwarder {
 public:
  explicit StderrForwarder(std::string error_prefix) : error_prefix_(std::move(error_prefix)) {}

  void Add(const char* bytes, size_t size) {
    for (size_t i = 0; i < size; ++i) {
      const char c = bytes[i];
      pending_.push_back(c);
      if (c == '\n' || c == '\r') Flush();
    }
    if (!absl::StartsWith(error_prefix_, pending_) && !absl::StartsWith(pending_, error_prefix_)) {
      Flush();
    }
  }
  void Finish() { Flush(); }

 private:
  void Flush() {
    if (!pending_.empty() && !absl::StartsWith(pending_, error_prefix_)) {
      (void)!write(STDERR_FILENO, pending_.data(), pending_.size());
    }
    pending_.clear();
  }
  std::string error_prefix_;
  std::string pending_;
};

}  // namespace

absl::StatusOr<std::string> FindSiblingTool(std::string_view name, std::string_view purpose) {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && IsExecutable(self.parent_path() / name)) return (self.parent_path() / name).string();
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
      const fs::path candidate = fs::path(std::string(dir)) / name;
      if (IsExecutable(candidate)) return candidate.string();
    }
  }
  return absl::NotFoundError(absl::StrCat(std::string(purpose), ": the ", std::string(name),
                                          " program is neither beside this program nor on PATH"));
}

absl::Status RunSiblingTool(const std::vector<std::string>& argv_in, const SiblingRun& run) {
  std::vector<std::string> args = argv_in;
  const std::string& program = args.front();
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The environment, plus the progress-bar hint when the tool's output reaches a terminal.
  std::string tty_hint = "PINFER_PROGRESS_TTY=1";
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!absl::StartsWith(*e, "PINFER_PROGRESS_TTY=")) envp.push_back(*e);
  }
  if (run.forward_stderr && isatty(STDERR_FILENO) != 0) envp.push_back(tty_hint.data());
  envp.push_back(nullptr);

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat(run.purpose, ": cannot create a pipe for ", program));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  pid_t pid = 0;
  const int spawned =
      posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (spawned != 0) {
    close(pipe_fds[0]);
    return absl::InternalError(
        absl::StrCat(run.purpose, ": cannot run ", program, ": ", std::strerror(spawned)));
  }
  const std::string error_prefix = absl::StrCat(fs::path(program).filename().string(), ": error: ");
  StderrForwarder forwarder(error_prefix);
  std::string err;
  char buffer[4096];
  for (ssize_t got; (got = read(pipe_fds[0], buffer, sizeof(buffer))) != 0;) {
    if (got < 0) {
      if (errno == EINTR) continue;
      break;
    }
    err.append(buffer, static_cast<size_t>(got));
    if (run.forward_stderr) forwarder.Add(buffer, static_cast<size_t>(got));
  }
  if (run.forward_stderr) forwarder.Finish();
  close(pipe_fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    const std::string how = WIFEXITED(status) ? absl::StrCat("exit ", WEXITSTATUS(status))
                                              : absl::StrCat("signal ", WTERMSIG(status));
    return absl::FailedPreconditionError(
        absl::StrCat(run.purpose, ": ", fs::path(program).filename().string(), " failed (", how,
                     "): ", LastLine(err, error_prefix)));
  }
  return absl::OkStatus();
}

}  // namespace pinfer
