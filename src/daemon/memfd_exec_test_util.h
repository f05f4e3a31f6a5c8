// Test helper: a child process running a copy of a binary from a memfd (memfd_create, then
// fexecve of a read-only reopen: a writable fd would make the exec fail with ETXTBSY), as
// fileless loaders and runc do. The child is killed and reaped when this goes away. Header
// only; test thread only.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <string>
#include <thread>
#include <vector>

#include "base/file.h"

namespace lim::daemon::testing {

class MemfdExec {
 public:
  // Runs `binary args…` from a memfd named memfd_name; waits until /proc/<pid>/exe shows the
  // memfd. False when it did not get there.
  // via_proc_path: execve("/proc/self/fd/N") instead of fexecve(). via_symlink: a symlink
  // made there to /proc/self/fd/N is executed (a name under neither /dev/fd/ nor /proc/).
  bool Start(const std::string& binary, const std::string& memfd_name, const std::vector<std::string>& args,
             bool via_proc_path = false, const std::string& via_symlink = "") {
    auto content = ReadFileBytes(binary);
    if (!content.ok()) return false;
    pid_ = fork();
    if (pid_ == 0) {
      int fd = ::memfd_create(memfd_name.c_str(), 0);
      if (fd < 0) _exit(120);
      size_t off = 0;
      while (off < content->size()) {
        ssize_t n = ::write(fd, content->data() + off, content->size() - off);
        if (n <= 0) _exit(121);
        off += static_cast<size_t>(n);
      }
      int ro = ::open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDONLY);
      if (ro < 0) _exit(122);
      ::close(fd);
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      char* envp[] = {nullptr};
      if (!via_symlink.empty()) {
        if (::symlink(("/proc/self/fd/" + std::to_string(ro)).c_str(), via_symlink.c_str()) != 0) _exit(124);
        ::execve(via_symlink.c_str(), argv.data(), envp);
      } else if (via_proc_path) {
        ::execve(("/proc/self/fd/" + std::to_string(ro)).c_str(), argv.data(), envp);
      } else {
        ::fexecve(ro, argv.data(), envp);
      }
      _exit(123);
    }
    for (int i = 0; i < 200; ++i) {
      char buf[PATH_MAX];
      ssize_t n = ::readlink(("/proc/" + std::to_string(pid_) + "/exe").c_str(), buf, sizeof buf - 1);
      if (n > 0 && std::string(buf, static_cast<size_t>(n)).rfind("/memfd:" + memfd_name, 0) == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  pid_t pid() const { return pid_; }
  ~MemfdExec() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

 private:
  pid_t pid_ = -1;
};

}  // namespace lim::daemon::testing
