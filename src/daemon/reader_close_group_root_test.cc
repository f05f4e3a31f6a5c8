// ReaderCloseGroup on real filesystems (root: fanotify, mounts). The group is a
// notification group (no permission events), so nothing here can wait on the test; the
// limd tests at the end run limd under `timeout -k` on their own mounts.
#include "daemon/reader_close_group.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/fanotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "base/file.h"
#include "daemon/limd_test_util.h"
#include "daemon/list_rows_test_util.h"
#include "tests/testing.h"

namespace lim::daemon {
namespace {

using lim::testing::RunCommand;
using lim::testing::ShellQuote;

InodeKey KeyOf(int fd) {
  struct stat st;
  EXPECT_EQ(::fstat(fd, &st), 0);
  return InodeKey{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

int64_t CtimeOf(int fd) {
  struct stat st;
  EXPECT_EQ(::fstat(fd, &st), 0);
  return static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
}

// A tmpfs and a loop ext4 of the test's own, each with one file.
class ReaderCloseGroupRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = testing::FanotifyUnavailable(FAN_CLASS_NOTIF);
    if (why.empty()) why = mounts_.AddTmpfs(&tmpfs_);
    if (why.empty()) why = mounts_.AddExt4(&ext4_);
    if (!why.empty()) GTEST_SKIP() << why;
    for (const auto& d : {tmpfs_, ext4_}) ASSERT_TRUE(WriteFileBytes(d + "/f", AsBytes("content\n")).ok());
    group_ = ReaderCloseGroup::Create(true);
    ASSERT_NE(group_, nullptr);
  }
  void TearDown() override { group_.reset(); }
  static uint64_t DevOf(const std::string& path) {
    struct stat st;
    EXPECT_EQ(::stat(path.c_str(), &st), 0);
    return static_cast<uint64_t>(st.st_dev);
  }
  std::vector<std::pair<InodeKey, pid_t>> Drain() {
    std::vector<std::pair<InodeKey, pid_t>> got;
    auto n = group_->Drain([&](const InodeKey& k, pid_t tid) { got.emplace_back(k, tid); });
    EXPECT_TRUE(n.ok()) << n.status().message();
    return got;
  }

  testing::ScratchMounts mounts_;  // first member: unmounted after the group is closed
  std::string tmpfs_, ext4_;
  std::unique_ptr<ReaderCloseGroup> group_;
};

// No root needed: a non-blocking pipe reads like a fanotify fd (a short read: the queue
// was empty then).
TEST(ReadUntilEmpty, ReadsFullBatchesOnAndStopsAtTheFirstShortOne) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
  ASSERT_GE(::fcntl(p[1], F_SETPIPE_SZ, 1 << 20), 150000);
  std::vector<char> data(150000, 'x');
  ASSERT_EQ(::write(p[1], data.data(), data.size()), static_cast<ssize_t>(data.size()));
  std::vector<ssize_t> batches;
  ASSERT_TRUE(ReadUntilEmpty(p[0], "pipe", [&](const char*, ssize_t n) {
                batches.push_back(n);
                // Something queued after the short read that emptied the queue: not read now
                // (the next drain's), where a read until EAGAIN would have taken it.
                if (n < 65536) {
                  ASSERT_EQ(::write(p[1], "late", 4), 4);
                }
              }).ok());
  EXPECT_EQ(batches, (std::vector<ssize_t>{65536, 65536, 150000 - 2 * 65536}));
  char rest[16];
  EXPECT_EQ(::read(p[0], rest, sizeof rest), 4);
  // An empty queue: no batch.
  batches.clear();
  ASSERT_TRUE(ReadUntilEmpty(p[0], "pipe", [&](const char*, ssize_t n) { batches.push_back(n); }).ok());
  EXPECT_TRUE(batches.empty());
  ::close(p[0]);
  ::close(p[1]);
}

TEST_F(ReaderCloseGroupRoot, LearnedReaderClosesArriveWithTheirInodeAndThread) {
  for (const auto& dir : {tmpfs_, ext4_}) {
    SCOPED_TRACE(dir);
    ASSERT_TRUE(group_->Mark(dir, DevOf(dir)));
    EXPECT_TRUE(group_->Marked(DevOf(dir)));
    int fd = ::open((dir + "/f").c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    InodeKey key = KeyOf(fd);
    group_->Learn(fd, key, CtimeOf(fd));
    EXPECT_TRUE(Drain().empty());  // nothing closed yet
    ::close(fd);
    auto got = Drain();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].first, key);
    EXPECT_EQ(got[0].second, ::gettid());
    // Written files close with FAN_CLOSE_WRITE: not this group's.
    fd = ::open((dir + "/f").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ::close(fd);
    EXPECT_TRUE(Drain().empty());
  }
}

TEST_F(ReaderCloseGroupRoot, UnlearnedInodesAndUnmarkedFilesystemsGiveNothing) {
  ASSERT_TRUE(group_->Mark(ext4_, DevOf(ext4_)));
  ASSERT_TRUE(WriteFileBytes(ext4_ + "/other", AsBytes("x")).ok());
  int fd = ::open((ext4_ + "/other").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ::close(fd);  // never learned
  int t = ::open((tmpfs_ + "/f").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(t, 0);
  group_->Learn(t, KeyOf(t), CtimeOf(t));  // tmpfs is not marked: not learned either
  ::close(t);
  EXPECT_TRUE(Drain().empty());
  EXPECT_EQ(group_->known(), 0u);
}

TEST_F(ReaderCloseGroupRoot, SecondFilesystemWithTheSameFsidIsRefused) {
  // A copy of an ext4 image keeps its UUID, hence its fsid: its events could not be told
  // from the original's, so it keeps its closes in the content group.
  ASSERT_TRUE(group_->Mark(ext4_, DevOf(ext4_)));
  std::string copy_dir = lim::testing::MakeTempDir();
  std::string copy_img = lim::testing::MakeTempDir() + "/copy.img";
  auto src = RunCommand("findmnt -n -o SOURCE " + ShellQuote(ext4_));  // the loop device
  ASSERT_EQ(src.exit_code, 0);
  src.out.erase(src.out.find_last_not_of('\n') + 1);
  ASSERT_EQ(RunCommand("sync && cp " + src.out + " " + copy_img + " && mount -o loop " + copy_img + " " + copy_dir).exit_code,
            0);
  mounts_.Adopt(copy_dir);
  EXPECT_FALSE(group_->Mark(copy_dir, DevOf(copy_dir)));
  EXPECT_FALSE(group_->Marked(DevOf(copy_dir)));
}

TEST_F(ReaderCloseGroupRoot, ReusedInodeNumberIsLearnedAgain) {
  ASSERT_TRUE(group_->Mark(tmpfs_, DevOf(tmpfs_)));
  int fd = ::open((tmpfs_ + "/f").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  InodeKey key = KeyOf(fd);
  auto first = ReaderCloseGroup::EncodeHandle(fd, "", AT_EMPTY_PATH);
  group_->Learn(fd, key, CtimeOf(fd));
  ::close(fd);
  ASSERT_EQ(Drain().size(), 1u);
  // The same inode number with another handle (a new file after a delete) and a new ctime:
  // learned again, so its close is matched too.
  ASSERT_TRUE(first.has_value());
  std::string other = *first;
  other.back() = static_cast<char>(other.back() ^ 0x5a);
  group_->Learn(key, other, CtimeOf(::open((tmpfs_ + "/f").c_str(), O_RDONLY | O_CLOEXEC)) + 1);
  EXPECT_EQ(group_->known(), 2u);
}

TEST_F(ReaderCloseGroupRoot, PruneKeepsInodesStillRead) {
  ASSERT_TRUE(group_->Mark(ext4_, DevOf(ext4_)));
  std::vector<InodeKey> keys;
  for (int i = 0; i < 8; ++i) {
    std::string p = ext4_ + "/p" + std::to_string(i);
    ASSERT_TRUE(WriteFileBytes(p, AsBytes("p")).ok());
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    keys.push_back(KeyOf(fd));
    group_->Learn(fd, keys.back(), CtimeOf(fd));
    ::close(fd);
  }
  EXPECT_EQ(group_->known(), 8u);
  group_->Prune(100, [](const InodeKey&) { return false; });  // under the bound: nothing goes
  EXPECT_EQ(group_->known(), 8u);
  group_->Prune(4, [&](const InodeKey& k) { return k == keys[3]; });
  EXPECT_EQ(group_->known(), 1u);
  auto got = Drain();  // the 8 closes: only the kept inode is still known
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, keys[3]);
}

// limd with the reader-close group: a reader that closed before a write-open is no ToMToU,
// one still open is — on tmpfs and on ext4 (both take the group on 6.18).
class ReaderCloseLimd : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    std::string why = testing::FanotifyUnavailable(FAN_CLASS_CONTENT);
    if (why.empty()) why = GetParam() ? mounts_.AddExt4(&mnt_) : mounts_.AddTmpfs(&mnt_);
    if (!why.empty()) GTEST_SKIP() << why;
    state_ = lim::testing::MakeTempDir();
  }
  void TearDown() override { limd_.Stop(SIGTERM); }
  lim::testing::CommandResult Sh(const std::string& line) { return testing::ShIn(mnt_, line); }
  int Violations(const std::string& name) {
    int n = 0;
    for (const auto& r : testing::ReadListRows(state_ + "/binary_runtime_measurements")) {
      n += (r.name == name && r.violation) ? 1 : 0;
    }
    return n;
  }
  std::string mnt_, state_;
  testing::ScratchMounts mounts_;
  testing::LimdChild limd_;  // declared after the mounts: stopped before they go
};

TEST_P(ReaderCloseLimd, ClosedReaderIsNoToMToUAndAnOpenOneIs) {
  ASSERT_TRUE(WriteFileBytes(state_ + "/policy", AsBytes("measure func=FILE_CHECK mask=MAY_READ uid=0\n")).ok());
  ASSERT_EQ(Sh("echo a > closed && echo b > held && echo c > many && echo d > again && echo e > seeded").exit_code, 0);
  // A reader from before limd's start (seeded by the start scan) that closes afterwards.
  ASSERT_EQ(RunCommand("cd " + ShellQuote(mnt_) + " && (exec 3<seeded; sleep 1.5; echo > " +
                       ShellQuote(state_ + "/holder-done") + ") >/dev/null 2>&1 &")
                .exit_code,
            0);
  auto rc = limd_.Start(testing::LimdCommand(state_, mnt_, "--no-tpm --policy " + ShellQuote(state_ + "/policy")), state_);
  ASSERT_FALSE(rc.has_value()) << "limd exited: " << *rc;
  ASSERT_GT(limd_.pid(), 0) << "limd did not become ready";
  for (int i = 0; i < 100 && !(::access((state_ + "/holder-done").c_str(), F_OK) == 0); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE((::access((state_ + "/holder-done").c_str(), F_OK) == 0));
  ASSERT_EQ(Sh("cat seeded >/dev/null; echo more >> seeded").exit_code, 0);
  EXPECT_EQ(Violations(mnt_ + "/seeded"), 0);  // the seeded reader's close was matched
  // Reads that ended (also many at once, and through a second reader) before the writer.
  ASSERT_EQ(Sh("cat closed >/dev/null; echo more >> closed").exit_code, 0);
  ASSERT_EQ(Sh("for i in 1 2 3 4 5 6 7 8; do cat many >/dev/null & done; wait; echo more >> many").exit_code, 0);
  // One thread opening and closing the same file again and again: identical queued closes
  // would merge into one (fanotify), leaving the count high, unless they are read in time.
  ASSERT_EQ(Sh("for i in $(seq 60); do read x < again; done; echo more >> again").exit_code, 0);
  EXPECT_EQ(Violations(mnt_ + "/closed"), 0);
  EXPECT_EQ(Violations(mnt_ + "/many"), 0);
  EXPECT_EQ(Violations(mnt_ + "/again"), 0);
  // A reader still open: exactly one ToMToU.
  ASSERT_EQ(Sh("exec 4<held; echo more >> held; echo again >> held").exit_code, 0);
  EXPECT_EQ(Violations(mnt_ + "/held"), 1);
  limd_.Stop(SIGTERM);
  // The closes came through the reader-close group (status.json is written at exit).
  auto status = ReadFileText(state_ + "/status.json");
  ASSERT_TRUE(status.ok());
  auto j = nlohmann::json::parse(*status);
  EXPECT_GE(j["reader_closes"].get<uint64_t>(), 70u) << *status;
  EXPECT_GE(j["reader_close_drains"].get<uint64_t>(), 2u) << *status;
}

INSTANTIATE_TEST_SUITE_P(TmpfsAndExt4, ReaderCloseLimd, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? std::string("Ext4") : std::string("Tmpfs"); });

}  // namespace
}  // namespace lim::daemon
