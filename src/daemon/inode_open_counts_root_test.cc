// InodeOpenCounts against the kernel (root: loading a BPF program needs CAP_BPF and
// CAP_PERFMON). Each test holds the counts it reads next to what it did to the file, and to
// what the sources InodeOpenCounts replaces would have said.
#include "daemon/inode_open_counts.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "base/file.h"
#include "base/hex.h"
#include "daemon/bpf_test_util.h"
#include "tests/testing.h"

namespace lim::daemon {
namespace {

std::string Unavailable() { return testing::BpfUnavailable(); }

class InodeOpenCountsRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = Unavailable(); !why.empty()) GTEST_SKIP() << why;
    auto loaded = InodeOpenCounts::Load();
    ASSERT_TRUE(loaded.ok()) << loaded.status().message();
    counts_ = std::move(*loaded);
    dir_ = lim::testing::MakeTempDir();
    path_ = dir_ + "/f";
    ASSERT_TRUE(WriteFileBytes(path_, AsBytes("content\n")).ok());
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd_, 0);
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  InodeOpenCounts::Counts Read(int fd) {
    auto c = counts_->Read(fd);
    EXPECT_TRUE(c.ok()) << c.status().message();
    return c.ok() ? *c : InodeOpenCounts::Counts{-100, -100, 0};
  }
  int Open(int flags) {
    int fd = ::open(path_.c_str(), flags | O_CLOEXEC);
    EXPECT_GE(fd, 0) << std::strerror(errno);
    return fd;
  }
  // What /proc says: this process's descriptors that lead to the file.
  int ProcFdsOfFile() {
    struct stat want;
    EXPECT_EQ(::stat(path_.c_str(), &want), 0);
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
      struct stat st;
      if (::stat(e.path().c_str(), &st) == 0 && st.st_dev == want.st_dev && st.st_ino == want.st_ino) ++n;
    }
    return n;
  }

  std::string dir_;
  std::unique_ptr<InodeOpenCounts> counts_;
  std::string path_;
  int fd_ = -1;
};

TEST_F(InodeOpenCountsRoot, FollowsReadAndWriteOpensAndCloses) {
  struct stat st;
  ASSERT_EQ(::fstat(fd_, &st), 0);
  auto c = Read(fd_);
  EXPECT_EQ(c.ino, static_cast<uint64_t>(st.st_ino));
  EXPECT_EQ(c.readers, 1);
  EXPECT_EQ(c.writers, 0);

  int r2 = Open(O_RDONLY);
  EXPECT_EQ(Read(fd_).readers, 2);
  int rw = Open(O_RDWR);  // a writer only: i_readcount counts O_RDONLY opens
  c = Read(fd_);
  EXPECT_EQ(c.readers, 2);
  EXPECT_EQ(c.writers, 1);
  int w = Open(O_WRONLY);
  EXPECT_EQ(Read(fd_).writers, 2);
  int path_only = Open(O_PATH);  // neither
  c = Read(fd_);
  EXPECT_EQ(c.readers, 2);
  EXPECT_EQ(c.writers, 2);
  // Read through any descriptor of the inode: the same counters.
  c = Read(rw);
  EXPECT_EQ(c.readers, 2);
  EXPECT_EQ(c.writers, 2);

  for (int fd : {r2, rw, w, path_only}) ::close(fd);
  c = Read(fd_);
  EXPECT_EQ(c.readers, 1);
  EXPECT_EQ(c.writers, 0);
}

// A one-byte message with room for one descriptor (SCM_RIGHTS), for sendmsg or recvmsg.
struct OneFdMessage {
  OneFdMessage() {
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
  }
  OneFdMessage(const OneFdMessage&) = delete;  // msg points into this object
  OneFdMessage& operator=(const OneFdMessage&) = delete;
  char byte = 'x';
  struct iovec iov = {&byte, 1};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  struct msghdr msg = {};
};

// The case /proc cannot see: a descriptor sent over a unix socket and closed by its sender
// is held by the message until someone receives it. The kernel still counts a reader.
TEST_F(InodeOpenCountsRoot, CountsAFileInFlightInAnScmRightsMessage) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  int sent = Open(O_RDONLY);
  OneFdMessage out;
  struct cmsghdr* cm = CMSG_FIRSTHDR(&out.msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cm), &sent, sizeof(int));
  ASSERT_EQ(::sendmsg(sv[0], &out.msg, 0), 1);
  ::close(sent);

  EXPECT_EQ(ProcFdsOfFile(), 1);    // /proc: only fd_
  EXPECT_EQ(Read(fd_).readers, 2);  // the kernel: fd_ and the one in the message

  // Received and closed: the count drops.
  OneFdMessage in;
  ASSERT_EQ(::recvmsg(sv[1], &in.msg, MSG_CMSG_CLOEXEC), 1);
  ASSERT_NE(CMSG_FIRSTHDR(&in.msg), nullptr);
  int received = -1;
  std::memcpy(&received, CMSG_DATA(CMSG_FIRSTHDR(&in.msg)), sizeof(int));
  EXPECT_EQ(Read(fd_).readers, 2);
  ::close(received);
  EXPECT_EQ(Read(fd_).readers, 1);
  ::close(sv[0]);
  ::close(sv[1]);
}

// A mapping keeps its file, and so its reader, after the descriptor is closed.
TEST_F(InodeOpenCountsRoot, CountsAReaderHeldOnlyByAMapping) {
  int fd = Open(O_RDONLY);
  void* map = ::mmap(nullptr, 4096, PROT_READ, MAP_SHARED, fd, 0);
  ASSERT_NE(map, MAP_FAILED);
  ::close(fd);
  EXPECT_EQ(ProcFdsOfFile(), 1);
  EXPECT_EQ(Read(fd_).readers, 2);
  ::munmap(map, 4096);
  EXPECT_EQ(Read(fd_).readers, 1);
}

// The write-lease probe's condition (fs/locks.c check_conflicting_open: the requester's own
// read-only fd alone) holds exactly when the counts say (1, 0).
TEST_F(InodeOpenCountsRoot, AgreesWithTheWriteLeaseProbe) {
  auto lease_granted = [&] {
    bool ok = ::fcntl(fd_, F_SETLEASE, F_WRLCK) == 0;
    if (ok) {
      EXPECT_EQ(::fcntl(fd_, F_SETLEASE, F_UNLCK), 0);
    }
    return ok;
  };
  auto idle = [&] {
    auto c = Read(fd_);
    return c.readers == 1 && c.writers == 0;
  };
  EXPECT_TRUE(idle());
  EXPECT_TRUE(lease_granted());
  for (int flags : {O_RDONLY, O_RDWR, O_WRONLY}) {
    int other = Open(flags);
    EXPECT_FALSE(idle()) << flags;
    EXPECT_FALSE(lease_granted()) << flags;
    ::close(other);
    EXPECT_TRUE(idle()) << flags;
    EXPECT_TRUE(lease_granted()) << flags;
  }
}

TEST_F(InodeOpenCountsRoot, RefusesDescriptorsThatAreNotOpen) {
  int spare = ::dup(fd_);
  ASSERT_GE(spare, 0);
  ::close(spare);
  for (int fd : {-1, spare, 1 << 30}) {
    auto c = counts_->Read(fd);
    ASSERT_FALSE(c.ok()) << fd;
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument) << fd;
    EXPECT_NE(c.status().message().find(std::to_string(fd)), std::string::npos) << c.status().message();
  }
  EXPECT_EQ(Read(fd_).readers, 1);  // still usable
}

// Threads reading at once each get their own file's counts (one output slot, serialized).
TEST_F(InodeOpenCountsRoot, ConcurrentReadsGetTheirOwnFilesCounts) {
  constexpr int kThreads = 4;
  std::vector<std::thread> threads;
  std::vector<int> bad(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::string p = dir_ + "/t" + std::to_string(t);
      if (!WriteFileBytes(p, AsBytes("x")).ok()) {
        bad[t] = -1;
        return;
      }
      std::vector<int> fds;
      for (int i = 0; i <= t; ++i) fds.push_back(::open(p.c_str(), O_RDONLY | O_CLOEXEC));  // t+1 readers
      struct stat st;
      ::fstat(fds[0], &st);
      for (int i = 0; i < 2000; ++i) {
        auto c = counts_->Read(fds[0]);
        if (!c.ok() || c->readers != t + 1 || c->ino != static_cast<uint64_t>(st.st_ino)) ++bad[t];
      }
      for (int fd : fds) ::close(fd);
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(bad[t], 0) << "thread " << t;
}

// Without the privilege, Load says so instead of failing later (run as nobody in a child).
TEST(InodeOpenCountsUnprivileged, LoadIsUnavailableWithTheReason) {
  if (auto why = Unavailable(); !why.empty()) GTEST_SKIP() << why;
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) ::_exit(10);
    auto loaded = InodeOpenCounts::Load();
    if (loaded.ok()) ::_exit(11);
    if (loaded.status().code() != StatusCode::kUnavailable) ::_exit(12);
    if (loaded.status().message().find("inode open counts (BPF)") == std::string::npos) ::_exit(13);
    if (loaded.status().message().find(std::strerror(EPERM)) == std::string::npos) ::_exit(14);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace lim::daemon
