// The kernel FanotifyGroup's fdinfo text (root: fanotify, mounts). The group is a
// notification group (no permission events): nothing here can wait on the test.
#include "daemon/fanotify_group.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/fanotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "base/file.h"
#include "base/hex.h"
#include "daemon/limd_test_util.h"
#include "tests/testing.h"

namespace lim::daemon {
namespace {

// The line of a superblock mark of path's filesystem (SuperblockMarkLine).
std::string SbMarkLine(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return SuperblockMarkLine(static_cast<uint64_t>(st.st_dev));
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) n++;
  return n;
}

// FdInfo() rereads one kept-open file at offset 0: each call must show the marks as they are
// then — added, grown past the first read's room, and gone with the superblock.
TEST(FanotifyGroupRoot, FdInfoShowsTheMarksAsTheyAreAtEachCall) {
  std::string why = testing::FanotifyUnavailable(FAN_CLASS_NOTIF);
  auto mounts = std::make_unique<testing::ScratchMounts>();
  std::string dir;
  if (why.empty()) why = mounts->AddTmpfs(&dir);
  if (!why.empty()) GTEST_SKIP() << why;
  auto group = OpenFanotifyGroup(FAN_CLASS_NOTIF | FAN_CLOEXEC, O_RDONLY | O_CLOEXEC);
  ASSERT_TRUE(group.ok()) << group.status().message();
  const std::string line = SbMarkLine(dir);

  auto before = (*group)->FdInfo();
  ASSERT_TRUE(before.ok()) << before.status().message();
  EXPECT_NE(before->find("flags:"), std::string::npos) << *before;
  EXPECT_EQ(before->find(line), std::string::npos) << *before;

  ASSERT_TRUE((*group)->MarkFilesystem(dir, FAN_CLOSE_WRITE).ok());
  auto marked = (*group)->FdInfo();
  ASSERT_TRUE(marked.ok());
  EXPECT_EQ(Count(*marked, line), 1u) << *marked;

  // 150 inode marks (a line of ~100 bytes each with its file handle): past the first read's
  // 4 KiB, so the text is read again whole into more room. Kept open: evictable marks live
  // as long as their inodes.
  std::vector<int> fds;
  for (int i = 0; i < 150; ++i) {
    std::string f = dir + "/f" + std::to_string(i);
    int fd = ::open(f.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    fds.push_back(fd);
    ASSERT_TRUE((*group)->AddInodeIgnore(fd, FAN_CLOSE_WRITE)) << strerror(errno);
  }
  auto grown = (*group)->FdInfo();
  ASSERT_TRUE(grown.ok());
  EXPECT_GT(grown->size(), 4096u);
  EXPECT_EQ(Count(*grown, "fanotify ino:"), 150u);
  EXPECT_EQ(Count(*grown, line), 1u);  // inode marks carry "sdev:" too, never after "fanotify "
  EXPECT_EQ(grown->back(), '\n');

  for (int fd : fds) ::close(fd);
  mounts.reset();  // the superblock goes, and its marks with it
  auto gone = (*group)->FdInfo();
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->find(line), std::string::npos) << *gone;
  EXPECT_EQ(Count(*gone, "fanotify ino:"), 0u);
}

// The kernel fact that keeps read leases out of limd (docs/performance.md "Read leases need
// a reader count"): a notification group cannot count opens. One thread's five opens and
// five closes of a file, queued unread, come out as one event whose mask holds both bits
// (fanotify_merge ORs the masks of a queued event of the same thread and object). So readers
// whose FAN_OPEN_PERM an ignore mark hid cannot be counted from FAN_OPEN instead. If a
// kernel stops merging, this fails, and the lease design should be weighed again.
TEST(FanotifyGroupRoot, OneThreadsOpensAndClosesMergeIntoOneNotification) {
  std::string why = testing::FanotifyUnavailable(FAN_CLASS_NOTIF);
  auto mounts = std::make_unique<testing::ScratchMounts>();
  std::string dir;
  if (why.empty()) why = mounts->AddTmpfs(&dir);
  if (!why.empty()) GTEST_SKIP() << why;
  const std::string file = dir + "/f";
  ASSERT_TRUE(WriteFileBytes(file, AsBytes("x")).ok());
  int g = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY | O_CLOEXEC);
  ASSERT_GE(g, 0) << strerror(errno);
  ASSERT_EQ(fanotify_mark(g, FAN_MARK_ADD, FAN_OPEN | FAN_CLOSE_NOWRITE, AT_FDCWD, file.c_str()), 0) << strerror(errno);
  for (int i = 0; i < 3; ++i) {
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ::close(fd);
  }
  int a = ::open(file.c_str(), O_RDONLY | O_CLOEXEC), b = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  ::close(a);
  ::close(b);
  alignas(fanotify_event_metadata) char buf[8192];
  ssize_t n = ::read(g, buf, sizeof buf);
  ASSERT_GT(n, 0) << strerror(errno);
  std::vector<uint64_t> masks;
  for (auto* m = reinterpret_cast<fanotify_event_metadata*>(buf); FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
    masks.push_back(m->mask);
    if (m->fd >= 0) ::close(m->fd);
  }
  ::close(g);
  ASSERT_FALSE(masks.empty());
  EXPECT_LT(masks.size(), 10u) << "one event per open and per close: opens could be counted";
  EXPECT_EQ(masks[0] & (FAN_OPEN | FAN_CLOSE_NOWRITE), uint64_t{FAN_OPEN | FAN_CLOSE_NOWRITE});
  std::printf("5 opens and 5 closes of one thread: %zu event(s), first mask %#llx\n", masks.size(),
              static_cast<unsigned long long>(masks[0]));
}

}  // namespace
}  // namespace lim::daemon
