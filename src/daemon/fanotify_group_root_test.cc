// The kernel FanotifyGroup's fdinfo text (root: fanotify, mounts). The group is a
// notification group (no permission events): nothing here can wait on the test.
#include "daemon/fanotify_group.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/fanotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "base/file.h"
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

}  // namespace
}  // namespace lim::daemon
