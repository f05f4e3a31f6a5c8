#include "daemon/fanotify_daemon.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <csignal>
#include <condition_variable>
#include <filesystem>
#include <set>
#include <map>
#include <mutex>
#include <thread>

#include "base/file.h"
#include "base/own_threads.h"
#include "daemon/fake_fanotify_group_test_util.h"
#include "daemon/fanotify_uapi.h"
#include "daemon/measurer_test_util.h"
#include "ima/policy.h"
#include "ima/policy_builtin.h"

namespace lim::daemon {
namespace {

bool Needs(const std::string& text) {
  auto p = ima::ParsePolicy(text, "test");
  EXPECT_TRUE(p.ok()) << text;
  return p.ok() && PolicyMeasuresMmap(*p);
}

TEST(FanotifyDaemon, PreContentOnlyForPoliciesThatMeasureMmap) {
  EXPECT_TRUE(Needs("measure func=MMAP_CHECK mask=MAY_EXEC\n"));
  EXPECT_TRUE(Needs("measure func=MMAP_CHECK_REQPROT mask=MAY_EXEC\n"));
  EXPECT_TRUE(Needs("measure fowner=0\n"));  // no func=: every hook
  EXPECT_FALSE(Needs("measure func=FILE_CHECK mask=MAY_READ\nmeasure func=BPRM_CHECK\n"));
  EXPECT_FALSE(Needs("dont_measure func=MMAP_CHECK\nappraise func=MMAP_CHECK\n"));
  EXPECT_TRUE(PolicyMeasuresMmap(*ima::BuiltinPolicy("tcb")));
}

}  // namespace
}  // namespace lim::daemon

// The event state machine through fake groups (fake_fanotify_group_test_util.h): no root,
// no kernel group. Files are real (a temporary directory); the measurer and the list are
// real; the syscall each event's thread is blocked in comes from the test.
namespace lim::daemon {
namespace {

using testing::FakeFanotifyGroup;
using testing::FakeReaderCloses;

constexpr pid_t kTid = 4194000;  // a thread of someone else (no such process: nothing in /proc)
constexpr uint32_t kAllow = 0x01;  // FAN_ALLOW

class FanotifyDaemonFake : public testing::MeasurerFixture {
 protected:
  // precontent: the fake pre-content group takes marks (a filesystem with FAN_PRE_ACCESS).
  // kNoFileCheck: reads are not measured (a measured read adds an ignore mark of its own).
  static constexpr const char* kPolicy =
      "measure func=BPRM_CHECK\nmeasure func=FILE_CHECK mask=MAY_READ\nmeasure func=MMAP_CHECK mask=MAY_EXEC\n";
  static constexpr const char* kNoFileCheck = "measure func=BPRM_CHECK\nmeasure func=MMAP_CHECK mask=MAY_EXEC\n";
  void Start(bool precontent, std::vector<pid_t> peers = {}, const char* policy = kPolicy,
             AppraiseMode appraise = AppraiseMode::kOff) {
    ASSERT_NO_FATAL_FAILURE(OpenParts(policy, ListConfig{}, RealEnv()));
    MeasurerConfig mc;
    if (appraise != AppraiseMode::kOff) {
      appraiser_ = std::make_unique<Appraiser>(AppraiserConfig{appraise}, std::vector<PublicKey>{}, DigestDenylist{}, nullptr);
      mc.appraiser = appraiser_.get();
    }
    measurer_ = std::make_unique<Measurer>(mc, matcher_.get(), list_.get(), RealEnv());
    files_ = lim::testing::MakeTempDir();
    FanotifyGroups g;
    auto content = std::make_unique<FakeFanotifyGroup>();
    auto pre = std::make_unique<FakeFanotifyGroup>(precontent);
    auto closes = std::make_unique<FakeReaderCloses>();
    content_ = content.get();
    pre_ = pre.get();
    closes_ = closes.get();
    g.content = std::move(content);
    g.precontent = std::move(pre);
    g.closes = std::move(closes);
    g.report_tid = true;
    DaemonOptions o;
    o.workers = 1;
    o.reader_nice = 0;
    o.trusted_peers = std::move(peers);
    o.read_syscall = [this](pid_t tid) -> Result<SyscallState> {
      std::lock_guard<std::mutex> lk(mu_);
      syscall_reads_[tid]++;
      auto it = syscalls_.find(tid);
      if (it == syscalls_.end()) return Status::NotFound("no syscall for tid " + std::to_string(tid));
      return it->second;
    };
    auto d = FanotifyDaemon::CreateWithGroups(o, std::move(g), measurer_.get(), list_.get(), RealEnv(), nullptr);
    ASSERT_TRUE(d.ok()) << d.status().message();
    daemon_ = std::move(*d);
    ASSERT_TRUE(daemon_->MarkFilesystem(files_, "ext4").ok());
  }
  void TearDown() override { daemon_.reset(); }

  // tid is blocked in openat(…, flags) / execve.
  void Openat(pid_t tid, int flags) { SetSyscall(tid, sysno::kOpenat, flags, "257 0xffffff9c 0x1000 0x" + std::to_string(flags)); }
  void Execve(pid_t tid) { SetSyscall(tid, sysno::kExecve, 0, "59 0x2000 0x3000 0x4000"); }
  void SetSyscall(pid_t tid, long nr, int flags, const std::string& line) {
    SyscallState s;
    s.blocked = true;
    s.nr = nr;
    s.args[2] = static_cast<uint64_t>(flags);
    s.line = line;
    std::lock_guard<std::mutex> lk(mu_);
    syscalls_[tid] = s;
  }
  int SyscallReads(pid_t tid) {
    std::lock_guard<std::mutex> lk(mu_);
    return syscall_reads_[tid];
  }
  std::string File(const std::string& name, const std::string& content = "data\n") {
    std::string path = files_ + "/" + name;
    EXPECT_TRUE(WriteFileBytes(path, AsBytes(content)).ok());
    return path;
  }
  static int OpenFd(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0) << path;
    return fd;
  }
  static InodeKey KeyOf(const std::string& path) {
    struct stat st;
    EXPECT_EQ(::stat(path.c_str(), &st), 0);
    return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
  }
  // One turn of the reader loop over what was pushed.
  void ReadOnce() {
    auto r = daemon_->ReadReady(1000);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_TRUE(*r);
  }

  std::unique_ptr<Appraiser> appraiser_;
  std::string files_;
  FakeFanotifyGroup *content_ = nullptr, *pre_ = nullptr;
  FakeReaderCloses* closes_ = nullptr;
  std::unique_ptr<FanotifyDaemon> daemon_;
  std::mutex mu_;
  std::map<pid_t, SyscallState> syscalls_;
  std::map<pid_t, int> syscall_reads_;
};

TEST_F(FanotifyDaemonFake, MarksEachGroupWithItsMask) {
  ASSERT_NO_FATAL_FAILURE(Start(/*precontent=*/true));
  auto marks = content_->marks();
  ASSERT_EQ(marks.size(), 1u);
  EXPECT_EQ(marks[0].path, files_);
  // Readers' closes go to the reader-close group: not in the content mask.
  // No FAN_OPEN_EXEC_PERM: an exec open is its OPEN_PERM alone (one round trip, not two).
  EXPECT_EQ(marks[0].mask, uint64_t{FAN_OPEN_PERM | FAN_CLOSE_WRITE});
  ASSERT_EQ(pre_->marks().size(), 1u);
  EXPECT_EQ(pre_->marks()[0].mask, uint64_t{FAN_PRE_ACCESS});
  EXPECT_EQ(daemon_->precontent_marks(), 1u);
  EXPECT_EQ(daemon_->marks(), 1u);
}

// An exec's BPF record carries the superblock's kernel device (s_dev), which the group's
// fdinfo lists; a btrfs's differs from its subvolumes' st_dev. A mark vouches for the s_dev
// it was learned under (and its caller is told that s_dev, for its mark time); a stale entry
// of a gone superblock under the same number is not the superblock marked any more.
TEST_F(FanotifyDaemonFake, ARecordsDeviceIsVouchedForByTheMarkItWasLearnedFrom) {
  Start(false);
  struct stat st;
  ASSERT_EQ(::stat(files_.c_str(), &st), 0);
  const uint64_t dev = st.st_dev;
  EXPECT_TRUE(daemon_->RecordDevMarked(dev));  // the fixture's mark, s_dev == st_dev
  EXPECT_FALSE(daemon_->RecordDevMarked(makedev(0, 4249)));  // never marked
  // Two more filesystems (the fake group marks nothing in the kernel): x, marked as it is;
  // then y, whose superblock the kernel would list under x's number — as if x were gone and
  // its number taken by y's superblock, marked under another st_dev (a btrfs subvolume).
  std::vector<std::string> dirs;
  std::set<uint64_t> seen{dev};
  for (const char* d : {"/dev/shm", "/run", "/dev", "/sys/fs/cgroup", "/proc"}) {
    struct stat ds;
    if (::stat(d, &ds) == 0 && seen.insert(ds.st_dev).second) dirs.push_back(d);
  }
  if (dirs.size() < 2) GTEST_SKIP() << "fewer than three filesystems to mark";
  struct stat xs;
  ASSERT_EQ(::stat(dirs[0].c_str(), &xs), 0);
  ASSERT_TRUE(daemon_->MarkFilesystem(dirs[0], "tmpfs", false).ok());
  EXPECT_TRUE(daemon_->RecordDevMarked(xs.st_dev));
  content_->DropMarkSdev(xs.st_dev);  // x's superblock is gone; limd's entry for it stays
  EXPECT_FALSE(daemon_->RecordDevMarked(xs.st_dev));
  EXPECT_EQ(daemon_->MarkedHere(xs.st_dev), std::optional<bool>(false));
  struct stat ys;
  ASSERT_EQ(::stat(dirs[1].c_str(), &ys), 0);
  content_->NextMarkSdev(xs.st_dev);
  uint64_t placed = 0, placed_sdev = 0;
  ASSERT_TRUE(daemon_->MarkFilesystem(dirs[1], "btrfs", false, &placed, &placed_sdev).ok());
  EXPECT_EQ(placed, static_cast<uint64_t>(ys.st_dev));
  EXPECT_EQ(placed_sdev, static_cast<uint64_t>(xs.st_dev));  // the caller records its mark time under it
  EXPECT_EQ(daemon_->ForeignSdevOf(ys.st_dev), static_cast<uint64_t>(xs.st_dev));
  // The btrfs's records name x's number: its mark vouches for them.
  EXPECT_TRUE(daemon_->RecordDevMarked(xs.st_dev));
  // Its own st_dev (a subvolume's) is no superblock's device: without the path, where only
  // the superblock mounted now can tell, it is not vouched for.
  EXPECT_EQ(daemon_->MarkedHere(ys.st_dev), std::optional<bool>(false));
  // x's entry names the number the btrfs now holds: x's superblock is not the one marked —
  // but the number itself, the btrfs's own device, is asked of the fdinfo.
  EXPECT_EQ(daemon_->MarkedHere(xs.st_dev), std::optional<bool>(false));
  content_->DropMarkSdev(xs.st_dev);  // the btrfs goes too
  EXPECT_FALSE(daemon_->RecordDevMarked(xs.st_dev));
  EXPECT_EQ(daemon_->MarkedHere(ys.st_dev), std::optional<bool>(false));
  EXPECT_EQ(daemon_->MarkedHere(makedev(0, 4249)), std::nullopt);  // never marked: cannot tell
  EXPECT_EQ(daemon_->MarkedHere(dev), std::optional<bool>(true));
}

// A btrfs's own device (s_dev), under which no st_dev was ever marked: the exec records and
// mappings name it, and the late path asks whether it is still marked — the fdinfo answers.
TEST_F(FanotifyDaemonFake, ABtrfssOwnDeviceIsAnsweredByTheFdinfo) {
  Start(false);
  struct stat st;
  ASSERT_EQ(::stat(files_.c_str(), &st), 0);
  std::string dir;
  struct stat ds;
  for (const char* d : {"/dev/shm", "/run", "/dev", "/sys/fs/cgroup", "/proc"}) {
    if (::stat(d, &ds) == 0 && ds.st_dev != st.st_dev) {
      dir = d;
      break;
    }
  }
  if (dir.empty()) GTEST_SKIP() << "no second filesystem to mark";
  const uint64_t s = makedev(0, 4250);
  content_->NextMarkSdev(s);
  uint64_t placed = 0, placed_sdev = 0;
  ASSERT_TRUE(daemon_->MarkFilesystem(dir, "btrfs", false, &placed, &placed_sdev).ok());
  EXPECT_EQ(placed_sdev, s);
  EXPECT_EQ(daemon_->MarkedHere(s), std::optional<bool>(true));
  EXPECT_TRUE(daemon_->RecordDevMarked(s));
  content_->DropMarkSdev(s);  // the btrfs is gone
  EXPECT_EQ(daemon_->MarkedHere(s), std::optional<bool>(false));
  EXPECT_FALSE(daemon_->RecordDevMarked(s));
}

TEST_F(FanotifyDaemonFake, OpenPermAfterExecOpenReusesItsSyscall) {
  ASSERT_NO_FATAL_FAILURE(Start(/*precontent=*/false));
  std::string prog = File("prog", "#!/bin/sh\necho hi\n");
  Execve(kTid);
  uint64_t entries = list_->entries();
  // The kernel raises FAN_OPEN_PERM right after the FAN_OPEN_EXEC_PERM of the same open.
  content_->Push(OpenFd(prog), FAN_OPEN_EXEC_PERM, kTid);
  content_->Push(OpenFd(prog), FAN_OPEN_PERM, kTid);
  ReadOnce();
  auto answers = content_->WaitAnswers(2);
  ASSERT_EQ(answers.size(), 2u);
  for (const auto& a : answers) {
    EXPECT_EQ(a.path, prog);
    EXPECT_EQ(a.response, kAllow);
  }
  EXPECT_EQ(SyscallReads(kTid), 1);  // the OPEN_PERM took the exec-open's
  EXPECT_EQ(daemon_->stats().exec_open_reuses.load(), 1u);
  // BPRM_CHECK measured it; the OPEN_PERM of an execve is FILE_CHECK with MAY_EXEC (no rule).
  EXPECT_EQ(list_->entries(), entries + 1);
  EXPECT_EQ(daemon_->stats().perm_events.load(), 2u);

  // Another open of the same file by the same thread later is no part of that execve.
  Openat(kTid, O_RDONLY);
  content_->Push(OpenFd(prog), FAN_OPEN_PERM, kTid);
  ReadOnce();
  EXPECT_EQ(content_->WaitAnswers(3).size(), 3u);
  EXPECT_EQ(SyscallReads(kTid), 2);
  EXPECT_EQ(daemon_->stats().exec_open_reuses.load(), 1u);
}

TEST_F(FanotifyDaemonFake, TheOneOpenPermOfAnExecveIsItsExecOpenAndItsFileCheck) {
  // Only MMAP_CHECK is measured: the ELF interpreter's exec open is the kernel's MMAP_CHECK,
  // the binary's is BPRM_CHECK (no rule), the FILE_CHECKs (MAY_EXEC) match nothing.
  ASSERT_NO_FATAL_FAILURE(Start(/*precontent=*/false, {}, "measure func=MMAP_CHECK mask=MAY_EXEC\n"));
  std::string prog = files_ + "/prog", interp = files_ + "/ld.so";
  std::filesystem::copy_file("/bin/true", prog);
  std::filesystem::copy_file("/bin/true", interp);  // any ELF file with an executable PT_LOAD
  uint64_t entries = list_->entries();
  Execve(kTid);
  content_->Push(OpenFd(prog), FAN_OPEN_PERM, kTid);
  ReadOnce();
  ASSERT_EQ(content_->WaitAnswers(1).size(), 1u);  // one event, one answer
  EXPECT_EQ(list_->entries(), entries);            // BPRM_CHECK: no rule
  EXPECT_EQ(measurer_->Readers(KeyOf(prog)), 1);   // counted once, as the read-only open it is
  // The same execve opens the interpreter: an exec open after an ELF binary, MMAP_CHECK.
  content_->Push(OpenFd(interp), FAN_OPEN_PERM, kTid);
  ReadOnce();
  auto answers = content_->WaitAnswers(2);
  ASSERT_EQ(answers.size(), 2u);
  for (const auto& a : answers) EXPECT_EQ(a.response, kAllow);
  EXPECT_EQ(list_->entries(), entries + 1);  // ld.so, as MMAP_CHECK
  EXPECT_EQ(SyscallReads(kTid), 2);          // one read per event
  EXPECT_EQ(daemon_->stats().exec_open_reuses.load(), 0u);
  EXPECT_EQ(daemon_->stats().exec_unsure.load(), 0u);
  EXPECT_EQ(measurer_->Readers(KeyOf(interp)), 1);
}

TEST_F(FanotifyDaemonFake, AnOpenWhoseSyscallCannotTellIsAlsoDecidedAsAnExecOpen) {
  ASSERT_NO_FATAL_FAILURE(Start(/*precontent=*/false, {}, "measure func=BPRM_CHECK\n"));
  std::string f = File("f");
  uint64_t entries = list_->entries();
  // No syscall for this thread (as for a usermode helper's kernel_execve): BPRM_CHECK too.
  content_->Push(OpenFd(f), FAN_OPEN_PERM, kTid);
  ReadOnce();
  ASSERT_EQ(content_->WaitAnswers(1).size(), 1u);
  EXPECT_EQ(list_->entries(), entries + 1);
  EXPECT_EQ(daemon_->stats().exec_unsure.load(), 1u);
  // In io_uring_enter: an IORING_OP_OPENAT, never an exec.
  std::string g = File("g");
  SetSyscall(kTid + 1, sysno::kIoUringEnter, 0, "426 0x3 0x1 0x0");
  content_->Push(OpenFd(g), FAN_OPEN_PERM, kTid + 1);
  ReadOnce();
  ASSERT_EQ(content_->WaitAnswers(2).size(), 2u);
  EXPECT_EQ(list_->entries(), entries + 1);
  // Open for write (the kernel's count): no exec that runs (ETXTBSY comes before BPRM_CHECK).
  int w = ::open(g.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(w, 0);
  content_->Push(OpenFd(g), FAN_OPEN_PERM, kTid + 2);
  ReadOnce();
  ASSERT_EQ(content_->WaitAnswers(3).size(), 3u);
  EXPECT_EQ(list_->entries(), entries + 1);
  EXPECT_EQ(daemon_->stats().exec_unsure.load(), 1u);
  ::close(w);
}

TEST_F(FanotifyDaemonFake, ReaderClosesAreDrainedBeforeAWriteOpen) {
  ASSERT_NO_FATAL_FAILURE(Start(/*precontent=*/true, {}, kNoFileCheck));
  std::string f = File("f");
  constexpr pid_t kReader = kTid, kWriter = kTid + 1;
  Openat(kReader, O_RDONLY);
  Openat(kWriter, O_WRONLY);
  // The reader opened and closed the file before the writer's open; its close waits in the
  // reader-close group. One batch: the write-open must drain it before it looks at counts.
  content_->Push(OpenFd(f), FAN_OPEN_PERM, kReader);
  content_->Push(OpenFd(f), FAN_OPEN_PERM, kWriter);
  closes_->PushClose(KeyOf(f), kReader);
  ReadOnce();
  EXPECT_EQ(content_->WaitAnswers(2).size(), 2u);
  EXPECT_EQ(closes_->drains(), 1);
  EXPECT_EQ(closes_->learned(), 1u);  // the reader's handle
  EXPECT_EQ(daemon_->stats().reader_closes.load(), 1u);
  // So the writer is alone: its writes need no pre-content round trip.
  EXPECT_EQ(pre_->ignores_added(), std::vector<std::string>{f});
  EXPECT_EQ(measurer_->Readers(KeyOf(f)), 0u);
}

TEST_F(FanotifyDaemonFake, WithoutTheReadersCloseTheWriterIsNotAlone) {
  ASSERT_NO_FATAL_FAILURE(Start(/*precontent=*/true, {}, kNoFileCheck));
  std::string f = File("f");
  Openat(kTid, O_RDONLY);
  Openat(kTid + 1, O_WRONLY);
  content_->Push(OpenFd(f), FAN_OPEN_PERM, kTid);
  content_->Push(OpenFd(f), FAN_OPEN_PERM, kTid + 1);
  ReadOnce();
  EXPECT_EQ(content_->WaitAnswers(2).size(), 2u);
  EXPECT_TRUE(pre_->ignores_added().empty());  // a reader still holds it
  EXPECT_EQ(measurer_->Readers(KeyOf(f)), 1u);
}

// An open whose syscall limd cannot read (io_uring, a running thread): the kernel's write
// count tells a read-only open from a write-open (write_probe.h). No syscall is set for
// these tids, as for an io-wq worker; the writer below is a real fd held by the test.
TEST_F(FanotifyDaemonFake, OpensWithoutKnownFlagsAreToldApartByTheKernelsWriteCount) {
  ASSERT_NO_FATAL_FAILURE(Start(/*precontent=*/false, {}, kNoFileCheck));
  std::string f = File("f");
  InodeKey key = KeyOf(f);
  // Nobody holds it for write: a read-only open, counted as a reader.
  content_->Push(OpenFd(f), FAN_OPEN_PERM, kTid);
  ReadOnce();
  ASSERT_EQ(content_->WaitAnswers(1).size(), 1u);
  EXPECT_EQ(measurer_->Readers(key), 1);
  EXPECT_EQ(measurer_->Writers(key), 0);
  EXPECT_EQ(daemon_->stats().unknown_syscall_reads.load(), 1u);
  // The opener's write access is counted before its event is queued: a real write fd
  // stands for it. limd counts no writer, so this open is the writer.
  int w = ::open(f.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(w, 0);
  content_->Push(OpenFd(f), FAN_OPEN_PERM, kTid + 1);
  ReadOnce();
  ASSERT_EQ(content_->WaitAnswers(2).size(), 2u);
  EXPECT_EQ(measurer_->Writers(key), 1);
  EXPECT_EQ(daemon_->stats().unknown_syscall_writes.load(), 1u);
  // With a writer counted, another such open cannot be told apart: a read, uncounted.
  content_->Push(OpenFd(f), FAN_OPEN_PERM, kTid + 2);
  ReadOnce();
  ASSERT_EQ(content_->WaitAnswers(3).size(), 3u);
  EXPECT_EQ(measurer_->Writers(key), 1);
  EXPECT_EQ(measurer_->Readers(key), 1);
  EXPECT_EQ(daemon_->stats().unknown_syscall.load(), 3u);
  EXPECT_EQ(daemon_->stats().unknown_syscall_writes.load(), 1u);
  EXPECT_EQ(daemon_->stats().unknown_syscall_reads.load(), 1u);
  ::close(w);
}

TEST_F(FanotifyDaemonFake, PrecontentIgnoreFollowsTheWriter) {
  ASSERT_NO_FATAL_FAILURE(Start(/*precontent=*/true));
  std::string f = File("f");
  constexpr pid_t kWriter = kTid, kReader = kTid + 1;
  Openat(kWriter, O_WRONLY);
  content_->Push(OpenFd(f), FAN_OPEN_PERM, kWriter);
  ReadOnce();
  ASSERT_EQ(content_->WaitAnswers(1).size(), 1u);
  EXPECT_EQ(pre_->ignores_added(), std::vector<std::string>{f});  // a lone write-only opener
  EXPECT_TRUE(pre_->ignores_removed().empty());
  // A reader while the writer has it open may map it PROT_EXEC: pre-content must see it.
  Openat(kReader, O_RDONLY);
  content_->Push(OpenFd(f), FAN_OPEN_PERM, kReader);
  ReadOnce();
  ASSERT_EQ(content_->WaitAnswers(2).size(), 2u);
  EXPECT_EQ(pre_->ignores_removed(), std::vector<std::string>{f});
  // The writer's close: the last writer is gone, the mark goes again (no answer: a notification).
  content_->Push(OpenFd(f), FAN_CLOSE_WRITE, kWriter);
  ReadOnce();
  EXPECT_EQ(pre_->ignores_removed().size(), 2u);
  EXPECT_EQ(content_->answers().size(), 2u);
  EXPECT_EQ(daemon_->stats().ignores_added.load(), 1u);
  EXPECT_EQ(daemon_->stats().ignores_removed.load(), 2u);
}

// Enforcing appraisal whose rules never look at a PROT_EXEC mmap (bench/appraise.sh's
// policy): a measured read-open gets its pre-content ignore mark as in measure mode, or
// every later read of the file would cost a round trip measure-only does not pay.
TEST_F(FanotifyDaemonFake, AppraisingWithoutMmapRulesKeepsPrecontentIgnores) {
  constexpr const char* kExecOnly =
      "measure func=FILE_CHECK mask=MAY_READ\nmeasure func=MMAP_CHECK mask=MAY_EXEC\nappraise func=BPRM_CHECK\n";
  ASSERT_NO_FATAL_FAILURE(Start(/*precontent=*/true, {}, kExecOnly, AppraiseMode::kEnforce));
  EXPECT_FALSE(measurer_->AppraisesMmap());
  std::string f = File("f");
  Openat(kTid, O_RDONLY);
  content_->Push(OpenFd(f), FAN_OPEN_PERM, kTid);
  ReadOnce();
  auto answers = content_->WaitAnswers(1);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].response, kAllow);
  EXPECT_EQ(pre_->ignores_added(), std::vector<std::string>{f});

  // A policy written later that appraises mmaps: the marks go, and no new one is added.
  auto p = ima::ParsePolicy(std::string(kExecOnly) + "appraise func=MMAP_CHECK\n", "test");
  ASSERT_TRUE(p.ok());
  ima::Policy mmap_policy = *p;
  ima::PolicyMatcher mmap_matcher(mmap_policy);
  int flushes = pre_->inode_flushes();
  measurer_->SetMatcher(&mmap_matcher);
  EXPECT_TRUE(measurer_->AppraisesMmap());
  EXPECT_EQ(pre_->inode_flushes(), flushes + 1);
  std::string g = File("g");
  content_->Push(OpenFd(g), FAN_OPEN_PERM, kTid);
  ReadOnce();
  ASSERT_EQ(content_->WaitAnswers(2).size(), 2u);
  EXPECT_EQ(pre_->ignores_added(), std::vector<std::string>{f});  // none for g
  measurer_->SetMatcher(matcher_.get());  // back to one without: no flush
  EXPECT_EQ(pre_->inode_flushes(), flushes + 1);
  daemon_.reset();  // before the matcher it may still decide with
}

// A denied access leaves no ignore mark: its inode's reads stay visible.
TEST_F(FanotifyDaemonFake, ADeniedOpenAddsNoPrecontentIgnore) {
  ASSERT_NO_FATAL_FAILURE(Start(/*precontent=*/true, {},
                                "measure func=FILE_CHECK mask=MAY_READ\nmeasure func=MMAP_CHECK mask=MAY_EXEC\n"
                                "appraise func=FILE_CHECK\n",
                                AppraiseMode::kEnforce));
  std::string f = File("f");  // no security.ima: missing-hash
  Openat(kTid, O_RDONLY);
  content_->Push(OpenFd(f), FAN_OPEN_PERM, kTid);
  ReadOnce();
  auto answers = content_->WaitAnswers(1);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].response, uint32_t{FAN_DENY});
  EXPECT_TRUE(pre_->ignores_added().empty());
}

TEST_F(FanotifyDaemonFake, OverflowFlushesVerdictsAndIgnoreMarksAndLeavesAGap) {
  ASSERT_NO_FATAL_FAILURE(Start(/*precontent=*/true));
  uint64_t entries = list_->entries();
  content_->Push(FAN_NOFD, FAN_Q_OVERFLOW, 0);
  ReadOnce();
  // The worker flushes, then appends the gap entry.
  for (int i = 0; i < 500 && list_->entries() == entries; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(list_->entries(), entries + 1);  // lim-event-overflow
  EXPECT_EQ(pre_->inode_flushes(), 1);
  EXPECT_EQ(daemon_->stats().overflows.load(), 1u);
  EXPECT_TRUE(content_->answers().empty());
}

TEST_F(FanotifyDaemonFake, OwnThreadsAndTheTpmPeerAreAnsweredAtOnceUnmeasured) {
  pid_t peer = ::getppid();  // stands in for the TPM server: a process that is not this one
  ASSERT_NO_FATAL_FAILURE(Start(/*precontent=*/false, {peer}));
  std::string f = File("f");
  uint64_t entries = list_->entries();
  pid_t own_tid = 0;
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  std::thread own = StartOwnThread([&] {
    std::unique_lock<std::mutex> lk(m);
    own_tid = ::gettid();
    cv.notify_all();
    cv.wait(lk, [&] { return done; });
  });
  {
    std::unique_lock<std::mutex> lk(m);
    cv.wait(lk, [&] { return own_tid != 0; });
  }
  for (pid_t pid : {::getpid(), own_tid, peer}) content_->Push(OpenFd(f), FAN_OPEN_PERM, pid);
  content_->Push(OpenFd(f), FAN_CLOSE_WRITE, own_tid);
  ReadOnce();
  // Answered by the reader itself, before ReadReady returned; no syscall read, nothing measured.
  auto answers = content_->answers();
  ASSERT_EQ(answers.size(), 3u);
  for (const auto& a : answers) EXPECT_EQ(a.response, kAllow);
  EXPECT_EQ(daemon_->stats().own_events.load(), 4u);
  EXPECT_EQ(daemon_->stats().perm_events.load(), 0u);
  EXPECT_EQ(SyscallReads(::getpid()) + SyscallReads(own_tid) + SyscallReads(peer), 0);
  EXPECT_EQ(list_->entries(), entries);
  // Someone else's open of the same file is measured.
  Openat(kTid, O_RDONLY);
  content_->Push(OpenFd(f), FAN_OPEN_PERM, kTid);
  ReadOnce();
  EXPECT_EQ(content_->WaitAnswers(4).size(), 4u);
  EXPECT_EQ(daemon_->stats().perm_events.load(), 1u);
  EXPECT_EQ(list_->entries(), entries + 1);
  {
    std::lock_guard<std::mutex> lk(m);
    done = true;
  }
  cv.notify_all();
  own.join();
}

// The TPM server's other threads are exempt too (looked up in its /proc/<pid>/task); a thread
// of someone else is not.
TEST_F(FanotifyDaemonFake, ThreadsOfTheTpmPeerAreExempt) {
  // A peer with two threads, forked before the daemon has any thread of its own.
  pid_t peer = ::fork();
  ASSERT_GE(peer, 0);
  if (peer == 0) {
    std::thread t([] { ::pause(); });
    ::pause();
    ::_exit(0);
  }
  pid_t peer_thread = 0;
  for (int i = 0; i < 500 && peer_thread == 0; ++i) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(peer) + "/task", ec)) {
      pid_t tid = static_cast<pid_t>(std::stol(e.path().filename().string()));
      if (tid != peer) peer_thread = tid;
    }
    if (peer_thread == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_NE(peer_thread, 0);
  Start(/*precontent=*/false, {peer});
  std::string f = File("f");
  content_->Push(OpenFd(f), FAN_OPEN_PERM, peer_thread);
  ReadOnce();
  EXPECT_EQ(content_->answers().size(), 1u);  // at once, by the reader
  EXPECT_EQ(daemon_->stats().own_events.load(), 1u);
  EXPECT_EQ(SyscallReads(peer_thread), 0);
  ::kill(peer, SIGKILL);
  ::waitpid(peer, nullptr, 0);
  // The same tid once the peer is gone is no longer exempt.
  Openat(peer_thread, O_RDONLY);
  content_->Push(OpenFd(f), FAN_OPEN_PERM, peer_thread);
  ReadOnce();
  EXPECT_EQ(content_->WaitAnswers(2).size(), 2u);
  EXPECT_EQ(daemon_->stats().own_events.load(), 1u);
  EXPECT_EQ(daemon_->stats().perm_events.load(), 1u);
}

}  // namespace
}  // namespace lim::daemon
