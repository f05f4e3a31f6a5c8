#include "daemon/control_socket.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/own_threads.h"
#include "control/status_report.h"

namespace lim::daemon {
namespace {

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// Writes all of s (bounded by the socket's send timeout).
void WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

}  // namespace

bool PeerAllowed(const struct ucred& peer, uid_t allowed_uid) { return peer.uid == allowed_uid; }

Result<std::unique_ptr<ControlSocket>> ControlSocket::Open(const ControlSocketOptions& options, StatusFn status,
                                                           LogFn log) {
  LIM_ASSIGN_OR_RETURN(sockaddr_un addr, control::ControlSocketAddress(options.path));
  std::error_code ec;
  auto parent = std::filesystem::path(options.path).parent_path();
  if (!parent.empty() && !std::filesystem::exists(parent, ec)) {
    std::filesystem::create_directories(parent, ec);
    if (ec) return Status::IoError("control socket directory " + parent.string() + ": " + ec.message());
    ::chmod(parent.c_str(), 0755);
  }
  struct stat st;
  if (::lstat(options.path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Status::InvalidArgument("control socket " + options.path + ": exists and is not a socket");
    if (control::QueryControlSocket(options.path, 500).ok()) {
      return Status::Unavailable("control socket " + options.path + " is in use by another limd");
    }
    ::unlink(options.path.c_str());  // stale: nobody answers
  }
  std::unique_ptr<ControlSocket> c(new ControlSocket);
  c->options_ = options;
  c->status_ = std::move(status);
  c->log_ = std::move(log);
  c->listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (c->listen_fd_ < 0) return Status::IoError(Errno("socket"));
  // Created 0600 (umask for the bind), so only root can even connect; SO_PEERCRED below.
  mode_t old = ::umask(0177);
  int rc = ::bind(c->listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::umask(old);
  if (rc != 0) {
    if (errno == EADDRINUSE) return Status::Unavailable("control socket " + options.path + " is in use by another limd");
    return Status::IoError(Errno("bind " + options.path));
  }
  if (::lstat(options.path.c_str(), &st) == 0) {
    c->dev_ = st.st_dev;
    c->ino_ = st.st_ino;
  }
  if (::listen(c->listen_fd_, 16) != 0) return Status::IoError(Errno("listen " + options.path));
  if (::pipe2(c->wake_, O_CLOEXEC | O_NONBLOCK) != 0) return Status::IoError(Errno("pipe"));
  return c;
}

ControlSocket::~ControlSocket() {
  Stop();
  if (listen_fd_ >= 0) {
    struct stat st;
    if (::lstat(options_.path.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
      ::unlink(options_.path.c_str());
    }
    ::close(listen_fd_);
  }
  for (int fd : wake_) {
    if (fd >= 0) ::close(fd);
  }
}

void ControlSocket::Start() { thread_ = StartOwnThread([this] { Serve(); }); }

void ControlSocket::Stop() {
  if (!thread_.joinable()) return;
  char b = 1;
  (void)!::write(wake_[1], &b, 1);
  thread_.join();
}

void ControlSocket::Serve() {
  for (;;) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    int n = ::poll(p, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || (p[1].revents & POLLIN)) return;
    if (!(p[0].revents & POLLIN)) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    Answer(fd);
    ::close(fd);
  }
}

void ControlSocket::Answer(int fd) {
  timeval tv{1, 0};  // a client that does not read cannot hold the socket's thread
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct ucred peer {};
  socklen_t len = sizeof peer;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0 || !PeerAllowed(peer, options_.allowed_uid)) {
    refused_.fetch_add(1);
    if (log_) {
      log_("control socket: refused pid=" + std::to_string(peer.pid) + " uid=" + std::to_string(peer.uid) +
           " (only uid " + std::to_string(options_.allowed_uid) + " is served)");
    }
    WriteAll(fd, control::ErrorReply("permission denied: the control socket serves uid " +
                                     std::to_string(options_.allowed_uid) + " only"));
    return;
  }
  served_.fetch_add(1);
  WriteAll(fd, status_ ? status_() : std::string("{}\n"));
}

}  // namespace lim::daemon
