#include "daemon/own_mountinfo.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "base/file.h"
#include "tests/testing.h"

namespace lim::daemon {
namespace {

// A child that does `setup` (a chroot, an unshare) and then waits to be killed; its pid once
// setup ran (-1 when it failed).
pid_t ChildAfter(int (*setup)(const char*), const std::string& arg) {
  int ready[2];
  if (::pipe(ready) != 0) return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    char ok = setup(arg.c_str()) == 0 ? '1' : '0';
    (void)!::write(ready[1], &ok, 1);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  char ok = '0';
  (void)!::read(ready[0], &ok, 1);
  ::close(ready[0]);
  if (pid > 0 && ok != '1') {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return -1;
  }
  return pid;
}

void Reap(pid_t pid) {
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

TEST(OwnMountinfo, ThisProcessGetsItsOwnMountinfoReadOnce) {
  OwnMountinfo own;
  const std::string* text = own.For(::getpid());
  ASSERT_NE(text, nullptr);
  auto fresh = ReadFileText("/proc/self/mountinfo");
  ASSERT_TRUE(fresh.ok());
  // Other tests on the machine may mount meanwhile: compare only when the table held still.
  uint64_t gen = own.generation();
  text = own.For(::getpid());
  ASSERT_NE(text, nullptr);
  if (own.generation() == gen) {
    EXPECT_EQ(*text, *fresh);
  }
  EXPECT_GE(own.reads(), 1u);
  EXPECT_EQ(own.For(0x7ffffff0), nullptr);  // no such process
}

TEST(OwnMountinfo, AMountInThisNamespaceIsInTheNextText) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (mount)";
  OwnMountinfo own;
  ASSERT_NE(own.For(::getpid()), nullptr);
  uint64_t gen = own.generation();
  std::string dir = lim::testing::MakeTempDir();
  ASSERT_EQ(::mount("limdtest", dir.c_str(), "tmpfs", 0, "size=1m"), 0) << strerror(errno);
  const std::string* text = own.For(::getpid());
  bool listed = text && text->find(" " + dir + " ") != std::string::npos;
  uint64_t after_mount = own.generation();
  ASSERT_EQ(::umount(dir.c_str()), 0);
  text = own.For(::getpid());
  bool listed_after_umount = text && text->find(" " + dir + " ") != std::string::npos;
  EXPECT_TRUE(listed);
  EXPECT_GT(after_mount, gen);  // read again: the poll said the table changed
  EXPECT_FALSE(listed_after_umount);
}

TEST(OwnMountinfo, AnotherNamespaceOrRootReadsItsOwn) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (unshare, chroot)";
  OwnMountinfo own;
  ASSERT_NE(own.For(::getpid()), nullptr);
  std::string dir = lim::testing::MakeTempDir();
  pid_t chrooted = ChildAfter([](const char* d) { return ::chroot(d); }, dir);
  ASSERT_GT(chrooted, 0);
  EXPECT_EQ(own.For(chrooted), nullptr);  // its mountinfo shows paths below its root
  Reap(chrooted);
  pid_t unshared = ChildAfter([](const char*) { return ::unshare(CLONE_NEWNS); }, "");
  ASSERT_GT(unshared, 0);
  EXPECT_EQ(own.For(unshared), nullptr);
  Reap(unshared);
  pid_t same = ChildAfter([](const char*) { return 0; }, "");
  ASSERT_GT(same, 0);
  EXPECT_NE(own.For(same), nullptr);
  Reap(same);
}

}  // namespace
}  // namespace lim::daemon
