// One accepted connection of pi-server, as cpp-httplib reads and writes it: an httplib::Stream over
// the socket whose reads are bounded by a deadline for the whole request.
//
// cpp-httplib 0.11's own stream bounds each read (a client that sends a byte now and then never
// times out) and cannot be woken: a worker thread blocked in it holds shutdown up. Here every read
// waits with poll(2) for the socket, the time left to the request's deadline and the server's
// "stop reading" signal; every write for the socket, the write timeout and the "cut" signal
// (ConnectionGate). A failed read remembers why, so that the client can be told (408, or 503 when
// the server stops).
//
// Handlers run on the thread that serves their connection: Current() gives them its connection,
// to watch whether the client is still there while they wait for the model, or to ask for the
// connection to close after the response.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "httplib.h"

namespace pinfer {

class ServerConnection : public httplib::Stream {
 public:
  using Clock = std::chrono::steady_clock;

  // `stop_reading_fd` and `cut_fd` become readable when the server stops (ConnectionGate). Becomes
  // Current() on this thread until destroyed. Does not own `fd`: Close() closes it.
  ServerConnection(int fd, int stop_reading_fd, int cut_fd,
                   std::chrono::milliseconds write_timeout);
  ~ServerConnection() override;
  ServerConnection(const ServerConnection&) = delete;
  ServerConnection& operator=(const ServerConnection&) = delete;

  // The connection the calling thread serves; null on other threads.
  static ServerConnection* Current();

  // Waits until the next request's first byte is here (or the client has closed: then reading it
  // ends the connection). False when `until` passes first, or the server stops reading before
  // that byte came. (Once it stops, reads take only the bytes already here.)
  bool WaitForRequest(Clock::time_point until);
  // A request begins: it must be read whole, headers and body, by `deadline`.
  void BeginRequest(Clock::time_point deadline);
  // Since BeginRequest: whether any byte of the request was read, any of a response written.
  bool request_started() const { return request_bytes_ > 0; }
  bool response_started() const { return response_bytes_ > 0; }
  // Why a read failed: the deadline passed, or the server stops reading.
  bool read_timed_out() const { return read_timed_out_; }
  bool read_stopped() const { return read_stopped_; }

  // The connection must not carry another request (part of this one was not read): close it after
  // the response, lingering so that the client gets that response.
  void CloseAfterResponse() { close_after_response_ = true; }
  bool close_after_response() const { return close_after_response_; }

  // True once the client has closed or reset the connection (asks the kernel; reads nothing).
  bool ClientGone() const;
  // Writes `bytes` (a whole response of our own) without waiting on a client that does not read.
  void SendRaw(const std::string& bytes);
  // Closes the socket. With `linger`, first half-closes it and reads what the client still sends
  // (the unread rest of its request), up to `linger`: closing a socket with unread input resets the
  // connection, and a reset can make the client's kernel drop our response before it is read.
  void Close(std::chrono::milliseconds linger);

  // httplib::Stream
  bool is_readable() const override;
  bool is_writable() const override;
  ssize_t read(char* ptr, size_t size) override;
  ssize_t write(const char* ptr, size_t size) override;
  void get_remote_ip_and_port(std::string& ip, int& port) const override;
  void get_local_ip_and_port(std::string& ip, int& port) const override;
  int socket() const override { return fd_; }

 private:
  // Reads what has arrived into buffer_: the byte count, 0 at the end of the input, -1 on failure
  // (read_timed_out_ or read_stopped_ tell which, neither: a socket error).
  ssize_t Fill();

  const int fd_;
  const int stop_reading_fd_;
  const int cut_fd_;
  const std::chrono::milliseconds write_timeout_;
  Clock::time_point deadline_ = Clock::time_point::max();
  // cpp-httplib reads the request line and headers a byte at a time: buffer the socket.
  char buffer_[4096];
  size_t buffered_ = 0;
  size_t consumed_ = 0;
  uint64_t request_bytes_ = 0;
  uint64_t response_bytes_ = 0;
  bool read_timed_out_ = false;
  bool read_stopped_ = false;
  bool close_after_response_ = false;
  bool closed_ = false;
  ServerConnection* previous_current_;
};

// Closes `fd` as ServerConnection::Close does, also stopping when `cut_fd` becomes readable.
void LingeringClose(int fd, std::chrono::milliseconds linger, int cut_fd);

}  // namespace pinfer
