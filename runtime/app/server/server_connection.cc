#include "runtime/app/server/server_connection.h"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

namespace pinfer {
namespace {

thread_local ServerConnection* t_current = nullptr;

using Clock = ServerConnection::Clock;

// Milliseconds from now until `deadline`, rounded up (poll(2) would wake early and spin), at most
// INT_MAX; 0 once it has passed.
int MillisecondsUntil(Clock::time_point deadline) {
  if (deadline == Clock::time_point::max()) return INT_MAX;
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, INT_MAX));
}

enum class Ready { kSocket, kSignal, kTimeout, kError };

// Waits for `events` on `fd`, or for `signal_fd` to become readable (the signal wins when both
// are), at most `timeout_ms`; `revents` gets the socket's.
Ready Wait(int fd, short events, int signal_fd, int timeout_ms, short* revents = nullptr) {
  pollfd fds[2] = {{fd, events, 0}, {signal_fd, POLLIN, 0}};
  const Clock::time_point until = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const int n = poll(fds, 2, timeout_ms);
    if (n < 0 && errno == EINTR) {
      timeout_ms = MillisecondsUntil(until);
      continue;
    }
    if (n < 0) return Ready::kError;
    if (n == 0) return Ready::kTimeout;
    if (fds[1].revents != 0) return Ready::kSignal;
    if (revents != nullptr) *revents = fds[0].revents;
    return Ready::kSocket;
  }
}

// The numeric address and port of a socket end, as cpp-httplib writes them.
void Describe(const sockaddr_storage& address, socklen_t length, std::string& ip, int& port) {
  if (address.ss_family == AF_INET) {
    port = ntohs(reinterpret_cast<const sockaddr_in*>(&address)->sin_port);
  } else if (address.ss_family == AF_INET6) {
    port = ntohs(reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port);
  }
  char host[NI_MAXHOST] = {};
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&address), length, host, sizeof(host), nullptr,
                  0, NI_NUMERICHOST) == 0) {
    ip = host;
  }
}

}  // namespace

ServerConnection::ServerConnection(int fd, int stop_reading_fd, int cut_fd,
                                   std::chrono::milliseconds write_timeout)
    : fd_(fd),
      stop_reading_fd_(stop_reading_fd),
      cut_fd_(cut_fd),
      write_timeout_(write_timeout),
      previous_current_(t_current) {
  t_current = this;
}

ServerConnection::~ServerConnection() {
  Close(std::chrono::milliseconds(0));
  t_current = previous_current_;
}

ServerConnection* ServerConnection::Current() { return t_current; }

bool ServerConnection::WaitForRequest(Clock::time_point until) {
  if (consumed_ < buffered_) return true;  // pipelined: the next request is already here
  const Ready ready = Wait(fd_, POLLIN, stop_reading_fd_, MillisecondsUntil(until));
  // Stopping: a request whose first bytes came before this thread looked is read (Fill), to be
  // refused with a 503, not dropped unanswered as if the client had sent nothing.
  char byte = 0;
  return ready == Ready::kSocket ||
         (ready == Ready::kSignal && recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0);
}

void ServerConnection::BeginRequest(Clock::time_point deadline) {
  deadline_ = deadline;
  request_bytes_ = 0;
  response_bytes_ = 0;
  read_timed_out_ = false;
  read_stopped_ = false;
}

ssize_t ServerConnection::Fill() {
  for (;;) {
    const int timeout_ms = MillisecondsUntil(deadline_);
    const Ready ready =
        timeout_ms == 0 ? Ready::kTimeout : Wait(fd_, POLLIN, stop_reading_fd_, timeout_ms);
    if (ready == Ready::kTimeout) {
      read_timed_out_ = true;
      return -1;
    }
    if (ready == Ready::kSignal) {
      // Stopping: take what has already come (the request it begins gets its 503), wait for
      // nothing more.
      const ssize_t n = recv(fd_, buffer_, sizeof(buffer_), MSG_DONTWAIT);
      if (n > 0) {
        buffered_ = static_cast<size_t>(n);
        consumed_ = 0;
      }
      if (n >= 0) return n;
      read_stopped_ = true;
      return -1;
    }
    if (ready == Ready::kError) return -1;
    const ssize_t n = recv(fd_, buffer_, sizeof(buffer_), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n > 0) {
      buffered_ = static_cast<size_t>(n);
      consumed_ = 0;
    }
    return n;
  }
}

ssize_t ServerConnection::read(char* ptr, size_t size) {
  if (consumed_ == buffered_) {
    const ssize_t n = Fill();
    if (n <= 0) return n;
  }
  const size_t n = std::min(size, buffered_ - consumed_);
  std::memcpy(ptr, buffer_ + consumed_, n);
  consumed_ += n;
  request_bytes_ += n;
  return static_cast<ssize_t>(n);
}

ssize_t ServerConnection::write(const char* ptr, size_t size) {
  for (;;) {
    short revents = 0;
    const Ready ready =
        Wait(fd_, POLLOUT, cut_fd_, static_cast<int>(write_timeout_.count()), &revents);
    if (ready != Ready::kSocket || (revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) return -1;
    const ssize_t n = send(fd_, ptr, size, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n > 0) response_bytes_ += static_cast<uint64_t>(n);
    return n;
  }
}

bool ServerConnection::is_readable() const {
  if (consumed_ < buffered_) return true;
  return Wait(fd_, POLLIN, stop_reading_fd_, MillisecondsUntil(deadline_)) == Ready::kSocket;
}

bool ServerConnection::is_writable() const {
  short revents = 0;
  return Wait(fd_, POLLOUT | POLLRDHUP, cut_fd_, static_cast<int>(write_timeout_.count()),
              &revents) == Ready::kSocket &&
         (revents & (POLLRDHUP | POLLERR | POLLHUP | POLLNVAL)) == 0;
}

bool ServerConnection::ClientGone() const {
  pollfd p{fd_, POLLRDHUP, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

void ServerConnection::get_remote_ip_and_port(std::string& ip, int& port) const {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (getpeername(fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    Describe(address, length, ip, port);
  }
}

void ServerConnection::get_local_ip_and_port(std::string& ip, int& port) const {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    Describe(address, length, ip, port);
  }
}

void ServerConnection::SendRaw(const std::string& bytes) {
  // Small (one error body): it fits the socket's send buffer, or the client is not reading.
  const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n > 0) response_bytes_ += static_cast<uint64_t>(n);
}

void ServerConnection::Close(std::chrono::milliseconds linger) {
  if (closed_) return;
  closed_ = true;
  LingeringClose(fd_, linger, cut_fd_);
}

void LingeringClose(int fd, std::chrono::milliseconds linger, int cut_fd) {
  if (linger.count() > 0 && shutdown(fd, SHUT_WR) == 0) {
    // Bounded in time and in bytes: a client that keeps sending is cut.
    constexpr size_t kMaxDrained = size_t{16} << 20;
    const Clock::time_point until = Clock::now() + linger;
    char scratch[4096];
    size_t drained = 0;
    while (drained < kMaxDrained &&
           Wait(fd, POLLIN, cut_fd, MillisecondsUntil(until)) == Ready::kSocket) {
      const ssize_t n = recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT);
      if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
      if (n <= 0) break;  // the client has closed too (or reset)
      drained += static_cast<size_t>(n);
    }
  }
  close(fd);
}

}  // namespace pinfer
