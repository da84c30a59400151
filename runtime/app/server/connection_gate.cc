#include "runtime/app/server/connection_gate.h"

#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace pinfer {
namespace {

// Descriptors the process needs besides its connections: model files, logs, the listening socket,
// the gate's eventfds, pi-run's loader...
constexpr rlim_t kOtherDescriptors = 128;

// An eventfd that, once signalled, stays readable: every poll(2) on it returns at once.
void Signal(int fd) {
  const uint64_t one = 1;
  const ssize_t ignored = write(fd, &one, sizeof(one));
  (void)ignored;
}

}  // namespace

ConnectionGate::ConnectionGate(int max_connections, std::function<void(const std::string&)> log)
    : max_connections_(max_connections), log_(std::move(log)) {
  stop_reading_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  cut_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

ConnectionGate::~ConnectionGate() {
  Stop();
  if (stop_reading_fd_ >= 0) close(stop_reading_fd_);
  if (cut_fd_ >= 0) close(cut_fd_);
}

absl::Status ConnectionGate::ReserveDescriptors(int max_connections) {
  if (max_connections < 0) return absl::OkStatus();
  const rlim_t needed = static_cast<rlim_t>(max_connections) + kRefusalThreads + kOtherDescriptors;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return absl::InternalError(absl::StrCat("getrlimit: ", std::strerror(errno)));
  }
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed) {
    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < needed) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "--max-connections ", max_connections, " needs ", needed,
          " open files, but this process may open at most ", limit.rlim_max, " (ulimit -Hn)"));
    }
    limit.rlim_cur = needed;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
      return absl::InternalError(absl::StrCat("--max-connections ", max_connections,
                                              ": cannot raise the open-file limit to ", needed,
                                              ": ", std::strerror(errno)));
    }
  }
  return absl::OkStatus();
}

bool ConnectionGate::Admit(std::function<void()> serve) { return Start(std::move(serve), false); }

bool ConnectionGate::AdmitRefusal(std::function<void()> refuse) {
  int64_t refused = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++refused_;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_refusal_log_ >= std::chrono::seconds(1)) {
      refused = refused_;
      refused_ = 0;
      last_refusal_log_ = now;
    }
  }
  // Outside the lock: the log may be slow (a terminal), and a flood of refusals should not wait on
  // it more than once a second.
  if (refused > 0 && log_ && !stopping_) {
    log_(absl::StrCat("refused ", refused, refused == 1 ? " connection" : " connections",
                      " since the last such line (HTTP 503): --max-connections ", max_connections_,
                      " are open"));
  }
  return Start(std::move(refuse), true);
}

bool ConnectionGate::Start(std::function<void()> run, bool refusal) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (stopped_) return false;
  int& count = refusal ? refusing_ : serving_;
  if (count >= (refusal ? kRefusalThreads : max_connections_)) return false;
  ++count;
  jobs_.push_back(Job{std::move(run), refusal});
  // Every job has a thread: an idle one, or a new one (at most serving_ + refusing_ of them).
  if (static_cast<int>(jobs_.size()) > idle_threads_) {
    threads_.emplace_back([this] { Work(); });
  } else {
    work_.notify_one();
  }
  return true;
}

void ConnectionGate::Work() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    ++idle_threads_;
    work_.wait(lock, [this] { return !jobs_.empty() || stopped_; });
    --idle_threads_;
    if (jobs_.empty()) return;  // stopped
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    job.run();
    job.run = nullptr;  // whatever it holds goes before the count says the connection is closed
    lock.lock();
    --(job.refusal ? refusing_ : serving_);
    closed_.notify_all();
  }
}

void ConnectionGate::StopReading() {
  stopping_ = true;
  Signal(stop_reading_fd_);
}

bool ConnectionGate::WaitForConnections(std::chrono::milliseconds limit) {
  std::unique_lock<std::mutex> lock(mutex_);
  return closed_.wait_for(lock, limit, [this] { return serving_ == 0; });
}

void ConnectionGate::Cut() {
  StopReading();
  Signal(cut_fd_);
}

void ConnectionGate::Stop() {
  Cut();
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
    threads.swap(threads_);
  }
  work_.notify_all();
  for (std::thread& t : threads) t.join();
}

}  // namespace pinfer
