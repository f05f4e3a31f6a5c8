#include "daemon/peer_threads.h"

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "gtest/gtest.h"

namespace lim::daemon {
namespace {

// A peer process that starts one more thread each time a byte arrives on `go` and writes
// the new thread's tid to `out` (from the new thread itself: it is running by then).
class PeerProcess {
 public:
  PeerProcess() {
    int a[2], b[2];
    if (::pipe(a) != 0 || ::pipe(b) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(a[1]);
      ::close(b[0]);
      char c;
      while (::read(a[0], &c, 1) == 1) {
        std::thread([fd = b[1]] {
          pid_t tid = static_cast<pid_t>(::syscall(SYS_gettid));
          if (::write(fd, &tid, sizeof tid) != sizeof tid) ::_exit(2);
          ::pause();
        }).detach();
      }
      ::_exit(0);
    }
    ::close(a[0]);
    ::close(b[1]);
    go_ = a[1];
    out_ = b[0];
  }
  ~PeerProcess() {
    Kill();
    if (go_ >= 0) ::close(go_);
    if (out_ >= 0) ::close(out_);
  }
  pid_t pid() const { return pid_; }
  pid_t NewThread() {
    pid_t tid = 0;
    if (::write(go_, "t", 1) != 1 || ::read(out_, &tid, sizeof tid) != sizeof tid) return 0;
    return tid;
  }
  void Kill() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

 private:
  pid_t pid_ = -1;
  int go_ = -1, out_ = -1;
};

TEST(PeerThreads, KnowsThePeerAndNoOneElseAndForgetsItWhenItIsGone) {
  PeerProcess peer;
  ASSERT_GT(peer.pid(), 0);
  std::string mode;
  auto p = PeerThreads::Open(peer.pid(), &mode);
  ASSERT_NE(p, nullptr) << mode;
  EXPECT_TRUE(p->Contains(peer.pid()));
  EXPECT_FALSE(p->Contains(::getpid()));
  EXPECT_FALSE(p->Contains(static_cast<pid_t>(::syscall(SYS_gettid))));
  pid_t t = peer.NewThread();
  ASSERT_GT(t, 0);
  EXPECT_TRUE(p->Contains(t));
  peer.Kill();
  // Its task directory is bound to the dead peer: no tid is its any more, recycled or not.
  EXPECT_FALSE(p->Contains(peer.pid()));
  EXPECT_FALSE(p->Contains(t));
}

TEST(PeerThreads, GoneBeforeOpenGivesNothing) {
  PeerProcess peer;
  pid_t pid = peer.pid();
  peer.Kill();
  std::string mode;
  EXPECT_EQ(PeerThreads::Open(pid, &mode), nullptr);
  EXPECT_NE(mode.find("gone"), std::string::npos) << mode;
}

// The point of the class: with perf (root), events of others cost no syscall, and a thread
// the peer starts later is known from the fork record written before it ran.
TEST(PeerThreads, OthersCostNoSyscallAndANewThreadIsKnownAtOnce) {
  PeerProcess peer;
  ASSERT_GT(peer.pid(), 0);
  std::string mode;
  auto p = PeerThreads::Open(peer.pid(), &mode);
  ASSERT_NE(p, nullptr) << mode;
  if (!p->uses_perf()) GTEST_SKIP() << "no perf events here (needs CAP_PERFMON): " << mode;
  pid_t stranger = static_cast<pid_t>(::syscall(SYS_gettid));
  for (int i = 0; i < 1000; ++i) ASSERT_FALSE(p->Contains(stranger));
  EXPECT_EQ(p->lookups(), 0u);
  // Processes forked meanwhile move the rings' heads: read, not a syscall each.
  for (int i = 0; i < 20; ++i) {
    pid_t c = ::fork();
    if (c == 0) ::_exit(0);
    ::waitpid(c, nullptr, 0);
    ASSERT_FALSE(p->Contains(c));
  }
  EXPECT_EQ(p->lookups(), 0u);
  for (int i = 0; i < 3; ++i) {
    pid_t t = peer.NewThread();
    ASSERT_GT(t, 0);
    EXPECT_TRUE(p->Contains(t)) << "thread " << i;
  }
  EXPECT_EQ(p->rescans(), 0u);  // learned from the fork records, not from /proc
  // With threads beyond its main one, a stranger still costs no faccessat.
  uint64_t before = p->lookups();
  for (int i = 0; i < 100; ++i) ASSERT_FALSE(p->Contains(stranger));
  EXPECT_EQ(p->lookups(), before);
}

// Records the kernel may have dropped (a ring filled by others' forks while limd read no
// event) are never trusted to be complete: the set is read again from /proc.
TEST(PeerThreads, AFullRingMeansARescan) {
  PeerProcess peer;
  ASSERT_GT(peer.pid(), 0);
  std::string mode;
  auto p = PeerThreads::Open(peer.pid(), &mode);
  ASSERT_NE(p, nullptr) << mode;
  if (!p->uses_perf()) GTEST_SKIP() << "no perf events here (needs CAP_PERFMON): " << mode;
  // Far more fork and exit records than a ring holds (32 KiB / 32 bytes per record), all
  // on this CPU's ring or spread over several.
  for (int i = 0; i < 1200; ++i) {
    pid_t c = ::fork();
    if (c == 0) ::_exit(0);
    ::waitpid(c, nullptr, 0);
  }
  pid_t t = peer.NewThread();
  ASSERT_GT(t, 0);
  EXPECT_TRUE(p->Contains(t));
  EXPECT_GE(p->rescans(), 1u);
}

}  // namespace
}  // namespace lim::daemon
