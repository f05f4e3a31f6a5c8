// ExecOrigin: an execve's target read from a thread's registers' worth of syscall state and
// its memory (here: this process's own, through /proc/self/mem), resolved as it sees it.
#include "daemon/exec_origin.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <climits>
#include <string>

namespace lim::daemon {
namespace {

SyscallState Exec(long nr, uint64_t a0, uint64_t a1 = 0, uint64_t a4 = 0) {
  SyscallState sc;
  sc.blocked = true;
  sc.nr = nr;
  sc.args = {a0, a1, 0, 0, a4, 0};
  return sc;
}

uint64_t Addr(const char* s) { return reinterpret_cast<uint64_t>(s); }

TEST(ExecOrigin, AbsoluteRelativeAndExecveatTargets) {
  pid_t pid = ::getpid();
  std::string proc = "/proc/" + std::to_string(pid);
  static const char kAbs[] = "/bin/true";
  auto t = ResolveExecTarget(pid, pid, Exec(59, Addr(kAbs)));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->open_path, proc + "/root/bin/true");
  EXPECT_EQ(t->path, "/bin/true");

  static const char kRel[] = "sub/prog";
  char cwd[PATH_MAX];
  ASSERT_NE(::getcwd(cwd, sizeof cwd), nullptr);
  t = ResolveExecTarget(pid, pid, Exec(59, Addr(kRel)));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->open_path, proc + "/cwd/sub/prog");
  EXPECT_EQ(t->path, std::string(cwd) + "/sub/prog");

  int dir = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(dir, 0);
  t = ResolveExecTarget(pid, pid, Exec(322, static_cast<uint64_t>(dir), Addr(kRel)));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->open_path, proc + "/fd/" + std::to_string(dir) + "/sub/prog");
  EXPECT_EQ(t->path, "/sub/prog");  // the dirfd's path, then the name

  static const char kEmpty[] = "";
  t = ResolveExecTarget(pid, pid, Exec(322, static_cast<uint64_t>(dir), Addr(kEmpty), AT_EMPTY_PATH));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->open_path, proc + "/fd/" + std::to_string(dir));
  EXPECT_FALSE(ResolveExecTarget(pid, pid, Exec(322, static_cast<uint64_t>(dir), Addr(kEmpty))).has_value());
  ::close(dir);
}

TEST(ExecOrigin, NotAnExecOrUnreadableIsNothing) {
  pid_t pid = ::getpid();
  static const char kAbs[] = "/bin/true";
  EXPECT_FALSE(ResolveExecTarget(pid, pid, Exec(257, Addr(kAbs))).has_value());  // openat
  SyscallState running = Exec(59, Addr(kAbs));
  running.blocked = false;
  EXPECT_FALSE(ResolveExecTarget(pid, pid, running).has_value());
  EXPECT_FALSE(ResolveExecTarget(pid, pid, Exec(59, 0)).has_value());
  EXPECT_FALSE(ResolveExecTarget(pid, pid, Exec(59, 8)).has_value());  // unmapped
}

TEST(InterpreterSet, LearnsAndAnswers) {
  InterpreterSet s;
  EXPECT_FALSE(s.Contains(1, 2));
  s.Learn(1, 2);
  EXPECT_TRUE(s.Contains(1, 2));
  EXPECT_FALSE(s.Contains(2, 1));
}

}  // namespace
}  // namespace lim::daemon
