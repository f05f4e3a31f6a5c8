// Test helpers for src/refs (header only): files in a scratch tree, a child process that
// runs as an unprivileged user (root reads every file, so "unreadable" needs someone else),
// and a tmpfs mounted inside a tree for --xdev. Test thread only.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <string>

#include "tests/testing.h"

namespace lim::refs::testing {

inline void WriteFile(const std::string& path, const std::string& data, mode_t mode = 0644) {
  std::ofstream(path, std::ios::binary) << data;
  ASSERT_EQ(chmod(path.c_str(), mode), 0) << path;
}

inline void MakeDir(const std::string& path) { ASSERT_EQ(mkdir(path.c_str(), 0755), 0) << path; }

// A scratch directory that an unprivileged user can walk into (MakeTempDir's may be 0700).
inline std::string OpenTempDir() {
  std::string d = lim::testing::MakeTempDir();
  chmod(d.c_str(), 0755);
  return d;
}

constexpr uid_t kNobody = 65534;

// Runs fn in a child as uid/gid 65534 (when root; as is otherwise) and returns its result
// (0–255). fn's gtest assertions do not reach the parent: it reports through the value.
inline int AsNobody(const std::function<int()>& fn) {
  if (geteuid() != 0) return fn();
  pid_t pid = fork();
  if (pid == 0) {
    if (setgroups(0, nullptr) != 0 || setgid(kNobody) != 0 || setuid(kNobody) != 0) _exit(250);
    _exit(fn() & 0xff);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return 251;
  return WEXITSTATUS(status);
}

// A tmpfs on dir for the life of the object (root only: ok() is false otherwise).
class ScratchTmpfs {
 public:
  explicit ScratchTmpfs(const std::string& dir) : dir_(dir) {
    mounted_ = geteuid() == 0 && mount("lim-refs-test", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=1m") == 0;
  }
  ~ScratchTmpfs() {
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
  }
  bool ok() const { return mounted_; }

 private:
  std::string dir_;
  bool mounted_ = false;
};

}  // namespace lim::refs::testing
