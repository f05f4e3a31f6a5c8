// ControlSocket: limd's control socket, a unix stream socket (default /run/lim/limd.sock,
// mode 0600 in a 0755 directory); its client and the document it serves are in src/control
// (`lim` links those, not the daemon). Every connection receives one JSON document — the status
// limd also writes to STATE/status.json — and is closed. The peer's credentials
// (SO_PEERCRED) decide: only allowed_uid (root) is served; anyone else gets
// {"error":"…"} and is logged. A socket path already served by another live limd is left
// alone (Open reports kBusy and limd runs without a control socket); a stale one is replaced.
// Threading: Open/Start/Stop from one thread; the status callback runs on the socket's own
// thread.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "base/status.h"
#include "control/control_client.h"

namespace lim::daemon {

using control::kDefaultControlSocket;

struct ControlSocketOptions {
  std::string path = kDefaultControlSocket;
  uid_t allowed_uid = 0;  // root; tests that run as another user pass their own uid
};

// The credential check, apart from the socket: served iff the peer's uid is allowed_uid.
bool PeerAllowed(const struct ucred& peer, uid_t allowed_uid);

class ControlSocket {
 public:
  using StatusFn = std::function<std::string()>;
  using LogFn = std::function<void(const std::string&)>;

  // Binds and listens. Busy: another process answers on the path (error kUnavailable with
  // "in use" in the message).
  static Result<std::unique_ptr<ControlSocket>> Open(const ControlSocketOptions& options, StatusFn status, LogFn log);
  ~ControlSocket();  // Stop(), then removes the socket file if it is still this socket's

  void Start();  // serves on its own thread until Stop()
  void Stop();
  uint64_t served() const { return served_.load(); }
  uint64_t refused() const { return refused_.load(); }

 private:
  ControlSocket() = default;
  void Serve();
  void Answer(int fd);

  ControlSocketOptions options_;
  StatusFn status_;
  LogFn log_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  std::thread thread_;
  std::atomic<uint64_t> served_{0}, refused_{0};
};

}  // namespace lim::daemon
