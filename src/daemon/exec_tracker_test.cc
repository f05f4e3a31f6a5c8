#include "daemon/exec_tracker.h"

#include <gtest/gtest.h>

namespace lim::daemon {
namespace {

SyscallState Blocked(const std::string& line) {
  SyscallState s;
  s.blocked = true;
  s.nr = 59;
  s.line = line;
  return s;
}

TEST(ExecTracker, OpensOfOneExecveAreChained) {
  ExecTracker t;
  auto now = ExecTracker::Clock::now();
  auto bin = t.OnExecOpen(7, Blocked("59 0x1 0x2"), InodeKey{1, 10}, now);
  EXPECT_EQ(bin.prev, nullptr);  // the first: BPRM_CHECK
  auto interp = t.OnExecOpen(7, Blocked("59 0x1 0x2"), InodeKey{1, 11}, now);
  EXPECT_EQ(interp.prev, bin.self);  // the same execve: the interpreter
  auto other = t.OnExecOpen(7, Blocked("59 0x5 0x6"), InodeKey{1, 10}, now);
  EXPECT_EQ(other.prev, nullptr);  // another execve
  t.OnOtherOpen(7);
  EXPECT_EQ(t.OnExecOpen(7, Blocked("59 0x5 0x6"), InodeKey{1, 10}, now).prev, nullptr);
  SyscallState running;
  running.line = "running";
  auto a = t.OnExecOpen(8, running, InodeKey{1, 10}, now);
  EXPECT_EQ(t.OnExecOpen(8, running, InodeKey{1, 10}, now).prev, nullptr);  // not blocked: never chained
  (void)a;
}

TEST(ExecTracker, OnlyTheNextOpenOfTheSameInodeSoonReusesTheSyscall) {
  ExecTracker t;
  auto now = ExecTracker::Clock::now();
  t.OnExecOpen(7, Blocked("59 0x1 0x2"), InodeKey{1, 10}, now);
  SyscallState sc;
  EXPECT_FALSE(t.FollowingOpen(7, InodeKey{1, 11}, now, &sc));  // another inode
  EXPECT_FALSE(t.FollowingOpen(7, InodeKey{1, 10}, now, &sc));  // only the very next event
  t.OnExecOpen(7, Blocked("59 0x1 0x2"), InodeKey{1, 10}, now);
  EXPECT_FALSE(t.FollowingOpen(7, InodeKey{1, 10}, now + std::chrono::seconds(2), &sc));  // too late
  t.OnExecOpen(7, Blocked("59 0x1 0x2"), InodeKey{1, 10}, now);
  EXPECT_FALSE(t.FollowingOpen(8, InodeKey{1, 10}, now, &sc));  // another thread
  ASSERT_TRUE(t.FollowingOpen(7, InodeKey{1, 10}, now, &sc));
  EXPECT_EQ(sc.line, "59 0x1 0x2");
}

}  // namespace
}  // namespace lim::daemon
