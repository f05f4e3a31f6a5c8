// Helpers of the root tests that start limd: whether fanotify permission events of a class
// are available, scratch mounts of the test's own (tmpfs, loop ext4), and a limd child run under
// `timeout -k 2 N` and stopped by its own pid (never the wrapper's: killing the wrapper
// would leave limd running). Header only; one LimdChild per limd, not thread-safe.
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "base/file.h"
#include "tests/testing.h"

namespace lim::daemon::testing {

// "" when root and fanotify_init(init_class) works, else why the test must skip.
inline std::string FanotifyUnavailable(unsigned init_class) {
  if (geteuid() != 0) return "needs root (fanotify permission events, mount)";
  int fd = fanotify_init(init_class | FAN_CLOEXEC, O_RDONLY);
  if (fd < 0) return "fanotify_init(class " + std::to_string(init_class) + ") fails: " + strerror(errno);
  ::close(fd);
  return "";
}

// A 64 MiB ext4 image at img, loop-mounted on dir (mount -o loop detaches at umount).
inline lim::testing::CommandResult MountLoopExt4(const std::string& img, const std::string& dir) {
  return lim::testing::RunCommand("truncate -s 64M " + img + " && mkfs.ext4 -q -F " + img + " && mount -o loop " +
                                  img + " " + dir);
}

// Mounts of one test, each in a fresh temporary directory, unmounted (lazily when busy)
// last first when this goes away. Add*() return "" or why the test must skip.
class ScratchMounts {
 public:
  ScratchMounts() = default;
  ScratchMounts(const ScratchMounts&) = delete;
  ScratchMounts& operator=(const ScratchMounts&) = delete;
  ~ScratchMounts() {
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
      if (::umount(it->c_str()) != 0) ::umount2(it->c_str(), MNT_DETACH);
    }
  }
  std::string AddTmpfs(std::string* dir, const std::string& options = "size=64m") {
    *dir = lim::testing::MakeTempDir();
    if (::mount("limdtest", dir->c_str(), "tmpfs", 0, options.c_str()) != 0) {
      return "mount tmpfs: " + std::string(strerror(errno));
    }
    dirs_.push_back(*dir);
    return "";
  }
  std::string AddExt4(std::string* dir) {
    *dir = lim::testing::MakeTempDir();
    std::string img = lim::testing::MakeTempDir() + "/ext4.img";
    auto mk = MountLoopExt4(img, *dir);
    if (mk.exit_code != 0) return "cannot make a loop-mounted ext4: " + mk.err;
    dirs_.push_back(*dir);
    ::unlink(img.c_str());  // the loop device keeps the image
    return "";
  }
  // A loop-mounted btrfs (needs mkfs.btrfs: btrfs-progs).
  std::string AddBtrfs(std::string* dir) {
    *dir = lim::testing::MakeTempDir();
    std::string img = lim::testing::MakeTempDir() + "/btrfs.img";
    auto mk = lim::testing::RunCommand("truncate -s 160M " + img + " && mkfs.btrfs -q " + img + " && mount -o loop " +
                                       img + " " + *dir);
    if (mk.exit_code != 0) return "cannot make a loop-mounted btrfs: " + mk.err;
    dirs_.push_back(*dir);
    ::unlink(img.c_str());
    return "";
  }
  // A mount made elsewhere (e.g. a copied image) that this should unmount too.
  void Adopt(const std::string& dir) { dirs_.push_back(dir); }

 private:
  std::vector<std::string> dirs_;
};

// Runs a shell line in dir, bounded (a stuck limd fails the test instead of hanging it).
inline lim::testing::CommandResult ShIn(const std::string& dir, const std::string& line, int seconds = 20) {
  return lim::testing::RunCommand("cd " + lim::testing::ShellQuote(dir) + " && timeout " + std::to_string(seconds) +
                                  " sh -c " + lim::testing::ShellQuote(line));
}

#ifdef LIMD_BIN
// limd in the foreground watching one mount, its state and log in state, without the
// securityfs view and the control socket; extra: more flags (--no-tpm, --policy FILE…).
inline std::string LimdCommand(const std::string& state, const std::string& watch, const std::string& extra) {
  using lim::testing::ShellQuote;
  return std::string(LIMD_BIN) + " --foreground --securityfs none --control-socket none --state " + ShellQuote(state) +
         " --watch " + ShellQuote(watch) + " --log-file " + ShellQuote(state + "/log") + " " + extra;
}
#endif

class LimdChild {
 public:
  ~LimdChild() { Stop(); }
  // Runs `timeout -k 2 <seconds> <args>` through sh and waits for state/limd.ready. Returns
  // limd's exit status if it exited before becoming ready, -1 if it never became ready.
  std::optional<int> Start(const std::string& args, const std::string& state, int seconds = 30) {
    ::unlink((state + "/limd.ready").c_str());
    std::string cmd = "exec timeout -k 2 " + std::to_string(seconds) + " " + args;
    wrapper_ = fork();
    if (wrapper_ == 0) {
      execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 200; ++i) {
      auto ready = ReadFileText(state + "/limd.ready");
      if (ready.ok() && !ready->empty()) {
        pid_ = std::atoi(ready->c_str());
        return std::nullopt;
      }
      int st = 0;
      if (waitpid(wrapper_, &st, WNOHANG) == wrapper_) {
        wrapper_ = -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }
  // Signals limd's own pid (never the timeout wrapper's), SIGKILLs it after 3 s, and
  // returns how it ended as the wrapper saw it: the exit code, 128+N for a signal (timeout
  // passes on limd's status), or -1 when nothing was running.
  int Stop(int sig = SIGTERM) {
    if (pid_ > 0) {
      ::kill(pid_, sig);
      for (int i = 0; i < 150 && ::kill(pid_, 0) == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (wrapper_ > 0 && waitpid(wrapper_, &wrapper_status_, WNOHANG) == wrapper_) wrapper_ = -1;
      }
      if (::kill(pid_, 0) == 0) ::kill(pid_, SIGKILL);
      pid_ = -1;
    } else if (wrapper_ <= 0) {
      return -1;
    }
    if (wrapper_ > 0) {
      waitpid(wrapper_, &wrapper_status_, 0);
      wrapper_ = -1;
    }
    return WIFEXITED(wrapper_status_) ? WEXITSTATUS(wrapper_status_) : 128 + WTERMSIG(wrapper_status_);
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t wrapper_ = -1, pid_ = -1;
  int wrapper_status_ = 0;
};

// A root test with a scratch mount of its own (mnt_: a tmpfs, or with kExt4 a loop-mounted
// ext4 — pre-content events, as on `/`), a state directory (state_) and one limd child,
// stopped at TearDown before the mounts go; skips without root or fanotify.
template <bool kExt4>
class ScratchLimdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = FanotifyUnavailable(FAN_CLASS_CONTENT);
    if (why.empty()) why = kExt4 ? mounts_.AddExt4(&mnt_) : mounts_.AddTmpfs(&mnt_);
    if (!why.empty()) GTEST_SKIP() << why;
    state_ = lim::testing::MakeTempDir();
  }
  void TearDown() override { limd_.Stop(SIGTERM); }
  std::string mnt_, state_;
  ScratchMounts mounts_;
  LimdChild limd_;  // declared after the mounts: stopped before they go
};
using TmpfsLimdTest = ScratchLimdTest<false>;
using Ext4LimdTest = ScratchLimdTest<true>;

}  // namespace lim::daemon::testing
