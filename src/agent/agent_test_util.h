// Test helper (header only, agent tests and the transport benchmark): runs the lim-agent
// binary (beside the test binary) as a child, reads the port from its "listening on" line,
// and kills it by its own pid. Test thread only.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

namespace lim::agent::testing {

inline std::string AgentBinary() {
  char exe[4096];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  std::string path(exe, n > 0 ? static_cast<size_t>(n) : 0);
  return path.substr(0, path.rfind('/')) + "/lim-agent";
}

class AgentProcess {
 public:
  // binary: another lim service with the same "listening on HOST:PORT" line (lim-verifier).
  explicit AgentProcess(std::string binary = AgentBinary()) : binary_(std::move(binary)) {}
  AgentProcess(const AgentProcess&) = delete;
  ~AgentProcess() { Stop(); }

  // Starts lim-agent with args; in pull mode waits (up to 20 s) for its port. Returns ""
  // or what went wrong (with what the agent printed).
  std::string Start(const std::vector<std::string>& args, bool wait_for_port = true) {
    int out[2];
    if (::pipe(out) != 0) return "pipe failed";
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::dup2(out[1], 2);
      ::close(out[0]);
      std::vector<std::string> all{binary_};
      all.insert(all.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    fd_ = out[0];
    if (!wait_for_port) return "";
    // Started again after Stop: only this run's "listening on" line counts.
    const size_t from = output_.size();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      char buf[512];
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) break;
      output_.append(buf, static_cast<size_t>(n));
      size_t at = output_.find("listening on ", from);
      size_t nl = at == std::string::npos ? at : output_.find('\n', at);
      if (nl != std::string::npos) {
        std::string addr = output_.substr(at, nl - at);
        port_ = static_cast<uint16_t>(std::stoi(addr.substr(addr.rfind(':') + 1)));
        return "";
      }
    }
    return binary_ + " did not start: " + output_;
  }

  // Everything the agent printed so far (non-blocking).
  const std::string& Output() {
    char buf[4096];
    for (;;) {
      pollfd p{fd_, POLLIN, 0};
      if (fd_ < 0 || ::poll(&p, 1, 0) <= 0) break;
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) break;
      output_.append(buf, static_cast<size_t>(n));
    }
    return output_;
  }

  // SIGTERM, then SIGKILL after 5 s; returns the exit status (or -1).
  int Stop() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        Close();
        return status;
      }
      ::usleep(50000);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    pid_ = 0;
    Close();
    return -1;
  }

  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }

 private:
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  std::string binary_;
  pid_t pid_ = 0;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::string output_;
};

}  // namespace lim::agent::testing
