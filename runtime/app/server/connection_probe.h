// Tells whether the client of a request is still connected while its handler waits for the model.
//
// cpp-httplib 0.11 does not give handlers their socket, and notices a client that went away only
// when a write fails, i.e. not while a request waits in the queue or a non-streaming completion is
// being generated. Each accepted connection is one socket of this process whose two ends are the
// request's local and remote address; we find it by those (Linux: the sockets under /proc/self/fd),
// then ask the kernel whether the peer has hung up (POLLRDHUP), without reading from it. The socket
// stays open for as long as the handler runs (cpp-httplib closes it after the response), so the
// descriptor cannot be reused under us.
#pragma once

#include <string>

namespace pinfer {

class ConnectionProbe {
 public:
  // Finds the socket; when none matches (another platform), ClientGone() is always false.
  ConnectionProbe(const std::string& local_addr, int local_port, const std::string& remote_addr,
                  int remote_port);
  bool found() const { return fd_ >= 0; }
  // True once the client has closed or reset the connection.
  bool ClientGone() const;

 private:
  int fd_ = -1;
};

}  // namespace pinfer
