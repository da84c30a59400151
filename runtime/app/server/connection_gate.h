// Which accepted connections pi-server serves, and on which threads.
//
// Every connection is served on a thread of its own, taken from a pool that grows on demand up to
// --max-connections and keeps its threads: a slow client then holds one thread, never the thread
// another request (or /health) is waiting for, as a fixed pool smaller than the number of slow
// clients would. Beyond the cap a connection is refused (a 503 written without waiting, then a
// bounded lingering close on one of a few spare threads, or a plain close when those are busy too).
// The read deadline (ServerConnection) bounds how long a slow client keeps its place.
//
// The gate also holds the two signals that end connections at shutdown, as eventfds that every
// connection polls beside its socket: "stop reading" (requests still arriving are refused, idle
// keep-alive connections close) and "cut" (writes to clients that do not read fail).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"

namespace pinfer {

class ConnectionGate {
 public:
  // Threads kept for refusals beyond `max_connections`.
  static constexpr int kRefusalThreads = 8;

  // `log` gets one line (no "pi-server: " prefix) now and then about refused connections.
  ConnectionGate(int max_connections, std::function<void(const std::string&)> log);
  ~ConnectionGate();  // Stop()
  ConnectionGate(const ConnectionGate&) = delete;
  ConnectionGate& operator=(const ConnectionGate&) = delete;

  // Raises this process's limit of open files when it is below what the cap needs (a connection
  // is a descriptor; at the limit accept() fails and new clients wait in the backlog unanswered).
  static absl::Status ReserveDescriptors(int max_connections);

  // Runs `serve` on a thread of its own when fewer than max_connections are being served; false
  // (and `serve` is dropped) when the cap is reached or the gate is stopped.
  bool Admit(std::function<void()> serve);
  // The same for a refusal, within kRefusalThreads; counts the refusal either way, and logs how
  // many there were at most once a second.
  bool AdmitRefusal(std::function<void()> refuse);

  int max_connections() const { return max_connections_; }
  int stop_reading_fd() const { return stop_reading_fd_; }
  int cut_fd() const { return cut_fd_; }
  bool stopping() const { return stopping_; }

  void StopReading();
  // Waits until every admitted connection is closed, or `limit` has passed; false then.
  bool WaitForConnections(std::chrono::milliseconds limit);
  void Cut();
  // StopReading() and Cut(), then waits for every connection's thread to end.
  void Stop();

 private:
  struct Job {
    std::function<void()> run;
    bool refusal = false;
  };
  bool Start(std::function<void()> run, bool refusal);
  void Work();

  const int max_connections_;
  const std::function<void(const std::string&)> log_;
  int stop_reading_fd_ = -1;
  int cut_fd_ = -1;
  std::atomic<bool> stopping_{false};

  std::mutex mutex_;
  std::condition_variable work_;
  std::condition_variable closed_;  // serving_ went down
  std::deque<Job> jobs_;
  std::vector<std::thread> threads_;
  int idle_threads_ = 0;
  int serving_ = 0;   // admitted connections not yet closed
  int refusing_ = 0;  // refusals lingering on a thread
  bool stopped_ = false;
  // Refusals since the last line about them.
  int64_t refused_ = 0;
  std::chrono::steady_clock::time_point last_refusal_log_{};
};

}  // namespace pinfer
