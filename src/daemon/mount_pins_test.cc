// MountPins and the lim-late-exec buffer: finding a superblock in mountinfo text (no root),
// a detached mount pinned from its fd and a namespace pinned past its last process (root).
#include "daemon/mount_pins.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "daemon/late_exec.h"

namespace lim::daemon {
namespace {

constexpr const char* kMountinfo =
    "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
    "36 22 0:42 / /tmp/w/a1 rw,relatime shared:9 - tmpfs x rw\n"
    "37 22 0:43 /sub /srv/b rw - fuse.sshfs host: rw\n";

TEST(FindMountOfDev, MountPointAndTypeOfTheSuperblock) {
  auto m = FindMountOfDev(kMountinfo, makedev(0, 42));
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->mount_point, "/tmp/w/a1");
  EXPECT_EQ(m->fstype, "tmpfs");
  auto f = FindMountOfDev(kMountinfo, makedev(0, 43));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->fstype, "fuse.sshfs");
  EXPECT_FALSE(FindMountOfDev(kMountinfo, makedev(0, 44)).has_value());
  EXPECT_FALSE(FindMountOfDev("garbage\n\n36 22\n", makedev(0, 42)).has_value());
}

TEST(LateExecBuffer, GapNamesWhatIsKnownWithExtraFieldsBeforeTheDelay) {
  std::string b = LateExecBuffer("", "/mnt/e;x", 77, makedev(0, 42), 5, 1200, "exited before limd looked",
                                 "filename=" + LateExecField("./e") + ";");
  EXPECT_EQ(b, "path=/mnt/e\\073x;pid=77;dev=0:42;ino=5;filename=./e;delay_us=1200;error=exited before limd looked;");
}

TEST(MountPins, ADetachedMountIsFoundByItsSuperblockAndReadableByName) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (fsmount)";
  int fs = static_cast<int>(::syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC));
  if (fs < 0) GTEST_SKIP() << "no fsopen";
  ASSERT_EQ(::syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0), 0);
  int mnt = static_cast<int>(::syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0));
  ASSERT_GE(mnt, 0);
  int f = ::openat(mnt, "prog", O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
  ASSERT_GE(f, 0);
  ASSERT_EQ(::write(f, "x", 1), 1);
  ::close(f);
  struct stat st;
  ASSERT_EQ(::fstat(mnt, &st), 0);
  MountPins pins(4, 1'000'000'000ull);
  auto dev = pins.PinDetached(::getpid(), mnt, 100);
  ASSERT_TRUE(dev.has_value());
  EXPECT_EQ(*dev, static_cast<uint64_t>(st.st_dev));
  ::close(mnt);
  ::close(fs);  // the mount is held by the pin alone now
  auto place = pins.Find(*dev, 200);
  ASSERT_TRUE(place.has_value());
  EXPECT_TRUE(place->detached);
  EXPECT_EQ(place->fstype, "tmpfs");
  int r = ::openat(place->root_fd, "prog", O_RDONLY | O_CLOEXEC);
  EXPECT_GE(r, 0);
  if (r >= 0) ::close(r);
  // An attached mount is discovery's: the root of limd's own namespace is not pinned.
  int root = ::open("/", O_PATH | O_CLOEXEC);
  EXPECT_FALSE(pins.PinDetached(::getpid(), root, 300).has_value());
  ::close(root);
  // Expired after kept_ns.
  EXPECT_FALSE(pins.Find(*dev, 2'000'000'000ull).has_value());
  EXPECT_EQ(pins.size(), 0u);
}

TEST(MountPins, APinnedNamespaceOutlivesItsLastProcess) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (unshare, mount)";
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  pid_t child = ::fork();
  if (child == 0) {
    // A namespace of its own with a tmpfs in it; waits until the parent has pinned it.
    ::close(pipefd[1]);
    if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("pinned", "/mnt", "tmpfs", 0, nullptr) != 0) {
      _exit(1);
    }
    int fd = ::open("/mnt/e", O_WRONLY | O_CREAT, 0755);
    if (fd < 0) _exit(1);
    ::close(fd);
    char c;
    (void)!::read(pipefd[0], &c, 1);
    _exit(0);
  }
  ::close(pipefd[0]);
  // Until the child's namespace differs from ours and has the tmpfs.
  std::string ns_self, ns_child;
  struct stat a, b;
  for (int i = 0; i < 200; ++i) {
    if (::stat("/proc/self/ns/mnt", &a) == 0 && ::stat(("/proc/" + std::to_string(child) + "/ns/mnt").c_str(), &b) == 0 &&
        a.st_ino != b.st_ino && ::access(("/proc/" + std::to_string(child) + "/root/mnt/e").c_str(), F_OK) == 0) {
      break;
    }
    ::usleep(10000);
  }
  struct stat e;
  ASSERT_EQ(::stat(("/proc/" + std::to_string(child) + "/root/mnt/e").c_str(), &e), 0);
  MountPins pins(4, 10'000'000'000ull);
  EXPECT_TRUE(pins.PinNamespace(child, 100));
  ::close(pipefd[1]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  auto place = pins.Find(static_cast<uint64_t>(e.st_dev), 200);
  ASSERT_TRUE(place.has_value());
  EXPECT_FALSE(place->detached);
  EXPECT_EQ(place->fstype, "tmpfs");
  int r = ::openat(place->root_fd, "mnt/e", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(r, 0);
  struct stat got;
  EXPECT_EQ(::fstat(r, &got), 0);
  EXPECT_EQ(got.st_ino, e.st_ino);
  ::close(r);
}

}  // namespace
}  // namespace lim::daemon
