// FuseServer: the root tests' FUSE server (lim_test_fusefs, testing/test_fusefs.cc) run
// under `timeout 60` in a child and unmounted and reaped by Stop(). Header only; needs
// LIM_TEST_FUSEFS_BIN (lim_daemon_test's compile definition).
#pragma once

#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "tests/testing.h"

namespace lim::daemon::testing {

// A FUSE server of the test's own (lim_test_fusefs, testing/test_fusefs.cc) serving the
// files of src; its attributes never change, whatever the content — unless xattrs (set
// before Start): then xattrs, chmod and chown pass through to src, with src's inode numbers.
class FuseServer {
 public:
  ~FuseServer() { Stop(); }
  bool xattrs = false;
  // refuse_uid >= 0: the server fails FUSE_OPEN from that uid (EACCES); others may use
  // the mount (allow_other). hang: reads of that file are never answered.
  std::string Start(const std::string& src, const std::string& mnt, int refuse_uid = -1, const char* hang = nullptr) {
    if (::access("/dev/fuse", R_OK | W_OK) != 0) return "no /dev/fuse";
    mnt_ = mnt;
    pid_ = fork();
    if (pid_ == 0) {
      if (hang) setenv("LIM_TEST_FUSEFS_HANG", hang, 1);
      if (xattrs) setenv("LIM_TEST_FUSEFS_XATTRS", "1", 1);
      if (refuse_uid >= 0) {
        setenv("LIM_TEST_FUSEFS_REFUSE_UID", std::to_string(refuse_uid).c_str(), 1);
        execl("/usr/bin/timeout", "timeout", "60", LIM_TEST_FUSEFS_BIN, src.c_str(), mnt.c_str(), "-o", "allow_other",
              static_cast<char*>(nullptr));
      }
      execl("/usr/bin/timeout", "timeout", "60", LIM_TEST_FUSEFS_BIN, src.c_str(), mnt.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 100; ++i) {
      if (lim::testing::RunCommand("grep -q ' " + mnt + " .* fuse' /proc/self/mountinfo").exit_code == 0) return "";
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return "the test FUSE server did not mount";
  }
  // SIGSTOP / SIGCONT to the server (the timeout wrapper's child).
  void Signal(int sig) {
    if (pid_ > 0) lim::testing::RunCommand("pkill -" + std::to_string(sig) + " -P " + std::to_string(pid_));
  }
  void Stop() {
    if (pid_ <= 0) return;
    Signal(SIGCONT);
    if (::umount(mnt_.c_str()) != 0) ::umount2(mnt_.c_str(), MNT_DETACH);
    int st;
    waitpid(pid_, &st, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  std::string mnt_;
};

}  // namespace lim::daemon::testing
