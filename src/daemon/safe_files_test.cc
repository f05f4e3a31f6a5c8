#include "daemon/safe_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>

#include "base/file.h"
#include "tests/testing.h"

namespace lim::daemon {
namespace {

constexpr uid_t kNobody = 65534;

using lim::testing::ModeOf;
using lim::testing::Slurp;

std::string Refusal(const std::string& path) {
  auto fd = OpenAppendFileSafely("--log-file", path);
  if (fd.ok()) {
    ::close(*fd);
    return "";
  }
  return fd.status().message();
}

class SafeFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = lim::testing::MakeTempDir();
    secret_ = dir_ + "/secret";
    std::ofstream(secret_) << "root only\n";
    ::chmod(secret_.c_str(), 0600);
  }
  std::string dir_, secret_;
};

TEST_F(SafeFiles, NewLogIsCreated0600AndAppended) {
  std::string log = dir_ + "/limd.log";
  ASSERT_EQ(Refusal(log), "");
  EXPECT_EQ(ModeOf(log), 0600u);
  std::ofstream(log, std::ios::app) << "one\n";
  auto fd = OpenAppendFileSafely("--log-file", log);  // an existing log of ours: appended
  ASSERT_TRUE(fd.ok()) << fd.status().message();
  ASSERT_EQ(::write(*fd, "two\n", 4), 4);
  ::close(*fd);
  EXPECT_EQ(Slurp(log), "one\ntwo\n");
}

// issue 18 item 6: a symlink at the log path was followed.
TEST_F(SafeFiles, SymlinkIsNeverFollowed) {
  std::string log = dir_ + "/limd.log";
  ASSERT_EQ(::symlink(secret_.c_str(), log.c_str()), 0);
  EXPECT_NE(Refusal(log).find("symbolic link"), std::string::npos) << Refusal(log);
  EXPECT_EQ(Slurp(secret_), "root only\n");
}

TEST_F(SafeFiles, HardLinkFifoAndDirectoryAreRefused) {
  std::string link = dir_ + "/hard.log";
  ASSERT_EQ(::link(secret_.c_str(), link.c_str()), 0);
  EXPECT_NE(Refusal(link).find("2 hard links"), std::string::npos) << Refusal(link);
  std::string fifo = dir_ + "/fifo.log";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_NE(Refusal(fifo).find("not a regular file"), std::string::npos) << Refusal(fifo);  // and did not block
  EXPECT_NE(Refusal(dir_ + "/").find("names a directory"), std::string::npos);
  EXPECT_EQ(Slurp(secret_), "root only\n");
}

TEST_F(SafeFiles, WorldWritableDirectoryMustBeSticky) {
  std::string shared = dir_ + "/shared";
  ASSERT_EQ(::mkdir(shared.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(shared.c_str(), 0777), 0);
  EXPECT_NE(Refusal(shared + "/limd.log").find("writable by every user and not sticky"), std::string::npos)
      << Refusal(shared + "/limd.log");
  ASSERT_EQ(::chmod(shared.c_str(), 01777), 0);
  EXPECT_EQ(Refusal(shared + "/limd.log"), "");  // sticky, and the file is ours
}

// The reported attack: uid 65534 owns a sticky 1777 directory and links limd.log in it to
// a root-only file; also its own regular file in a root-owned sticky directory.
TEST_F(SafeFiles, AnotherUsersDirectoryOrFileIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (chown)";
  std::string x = dir_ + "/x";
  ASSERT_EQ(::mkdir(x.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(x.c_str(), 01777), 0);
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  ASSERT_EQ(::chown(x.c_str(), kNobody, kNobody), 0);
  EXPECT_NE(Refusal(x + "/limd.log").find("belongs to uid 65534"), std::string::npos) << Refusal(x + "/limd.log");
  ASSERT_EQ(::chown(x.c_str(), 0, 0), 0);
  std::string theirs = x + "/limd.log";
  std::ofstream(theirs) << "";
  ASSERT_EQ(::chown(theirs.c_str(), kNobody, kNobody), 0);
  EXPECT_NE(Refusal(theirs).find("protected_regular"), std::string::npos) << Refusal(theirs);
}

// issue 18 item 7: an existing 0777 state directory was used silently.
TEST_F(SafeFiles, StateDirectoryIsCreated0700AndRefusedWhenOthersCanWrite) {
  std::string st = dir_ + "/state";
  ASSERT_TRUE(PrepareStateDir(st).ok());
  EXPECT_EQ(ModeOf(st), 0700u);
  ASSERT_EQ(::chmod(st.c_str(), 0755), 0);
  EXPECT_TRUE(PrepareStateDir(st).ok());  // readable is fine: the files are 0600
  for (mode_t bad : {0777u, 0770u, 0702u}) {
    ASSERT_EQ(::chmod(st.c_str(), bad), 0);
    Status s = PrepareStateDir(st);
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find("chmod 0700"), std::string::npos) << s.message();
    EXPECT_EQ(ModeOf(st), bad);  // refused, not repaired
  }
  std::ofstream(dir_ + "/file") << "";
  EXPECT_FALSE(PrepareStateDir(dir_ + "/file").ok());
}

TEST_F(SafeFiles, StateDirectoryOfAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (chown)";
  std::string st = dir_ + "/state";
  ASSERT_EQ(::mkdir(st.c_str(), 0700), 0);
  ASSERT_EQ(::chown(st.c_str(), kNobody, kNobody), 0);
  Status s = PrepareStateDir(st);
  EXPECT_NE(s.message().find("belongs to uid 65534"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace lim::daemon
