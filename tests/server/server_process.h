// A program (pi-server by default) run in the background by a test, its output in a file, for the
// tests of the pi-server program: its flags, its signals, and replicas behind a balancer.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace pinfer::test {

// `program` with `args`, its stdout and stderr in a log file under ScratchDir(); `env`
// ("NAME=value") added to its environment. Killed (SIGKILL) when destroyed if still running.
class ServerProcess {
 public:
  explicit ServerProcess(const std::vector<std::string>& args,
                         const std::vector<std::string>& env = {},
                         const char* program = PI_SERVER_PATH);
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  std::string Log() const;
  // Whether the log contains `text` within 30 s.
  bool WaitForLog(const std::string& text) const;
  // The port from "listening on http://127.0.0.1:PORT", once logged (-1 after 30 s).
  int WaitForPort() const;
  void Signal(int signal_number) const;
  // The exit code (-1 when it does not exit within 30 s, or dies of a signal).
  int WaitForExit();
  // SIGKILL, and waits for it to be gone.
  void Kill();
  pid_t pid() const { return pid_; }

 private:
  std::string log_;
  pid_t pid_ = -1;
  bool exited_ = false;
};

// The resident memory of process `pid` (VmRSS of /proc/PID/status), 0 when it cannot be read.
uint64_t ResidentBytesOf(pid_t pid);

// A TCP port on 127.0.0.1 free a moment ago (bound to port 0, then closed), for a program that
// cannot be told to pick one itself; -1 when none could be had.
int FreeLoopbackPort();

}  // namespace pinfer::test
