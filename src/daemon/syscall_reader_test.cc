// SyscallReader: the kept-open /proc/<tid>/syscall must show the thread's current syscall
// on every read (never a cached answer), and a dead thread must not leave a stale one.
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "daemon/proc_context.h"

namespace lim::daemon {
namespace {

// Waits until tid is blocked in read(2) on fd, as the reader reports it.
bool BlockedOnRead(SyscallReader& r, pid_t tid, int fd) {
  for (int i = 0; i < 20000; ++i) {
    auto s = r.Read(tid);
    if (s.ok() && s->blocked && s->nr == 0 && s->args[0] == static_cast<uint64_t>(fd)) return true;
    std::this_thread::yield();
  }
  return false;
}

TEST(SyscallReader, RereadsTheCurrentSyscallAndForgetsDeadThreads) {
  int a[2], b[2];
  ASSERT_EQ(::pipe(a), 0);
  ASSERT_EQ(::pipe(b), 0);
  std::atomic<pid_t> tid{0};
  std::thread t([&] {
    tid = static_cast<pid_t>(::syscall(SYS_gettid));
    char c;
    (void)!::read(a[0], &c, 1);  // first blocked here, then on b
    (void)!::read(b[0], &c, 1);
  });
  while (tid.load() == 0) std::this_thread::yield();
  SyscallReader r;
  EXPECT_TRUE(BlockedOnRead(r, tid, a[0]));
  ASSERT_EQ(::write(a[1], "x", 1), 1);
  EXPECT_TRUE(BlockedOnRead(r, tid, b[0]));  // the same open file, a new answer
  ASSERT_EQ(::write(b[1], "x", 1), 1);
  t.join();
  auto gone = r.Read(tid);
  EXPECT_TRUE(!gone.ok() || !gone->blocked);  // no stale "blocked in read" for a dead thread
  for (int fd : {a[0], a[1], b[0], b[1]}) ::close(fd);
}

}  // namespace
}  // namespace lim::daemon
